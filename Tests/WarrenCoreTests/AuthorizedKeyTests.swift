import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// The authorized_keys line and the bastion steps, rendered from the shipped template.
@Suite struct AuthorizedKeyTests {
    static let key = try! PublicKey.parse(ConfigCases.hostKey + " warren-db@ops-vm").get()

    func renderer() throws -> AuthorizedKeyRenderer {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Templates/\(AuthorizedKeyRenderer.templateName)")
        return try AuthorizedKeyRenderer(template: String(contentsOf: url, encoding: .utf8))
    }

    func tunnel(_ forwards: String, allowedFrom: String = "") throws -> TunnelConfig {
        let text = substitute("[tunnels.db]\nidentity_file = \"@KEY@\"\nhost = \"bastion.example.com\"\nhost_key = \"\(ConfigCases.hostKey)\"\n\(forwards)\n\(allowedFrom)")
        return try makeLoader().load(text: text, file: "f").tunnels[0]
    }

    func line(_ forwards: String, allowedFrom: String = "") throws -> String {
        try renderer().line(AuthorizedKeyPolicy(tunnel: tunnel(forwards, allowedFrom: allowedFrom)), key: Self.key)
    }

    @Test func localForwardsBecomePermitopenAndRemoteListenIsClosed() throws {
        let text = try line("local_forward = [\"127.0.0.1:15432:db.internal:5432\", \"15433:db.internal:5432\", \"15434:[fd00::5]:5432\"]")
        #expect(text == "restrict,port-forwarding,command=\"/bin/false\",permitopen=\"db.internal:5432\",permitopen=\"[fd00::5]:5432\",permitlisten=\"none.invalid:1\" \(ConfigCases.hostKey) warren-db@ops-vm")
    }

    @Test func remoteForwardsBecomePermitlistenAndLocalOpenIsClosed() throws {
        let text = try line("remote_forward = [\"127.0.0.1:8080:localhost:80\", \"9090\", \"*:7070:a:1\"]")
        #expect(text.contains(",permitopen=\"none.invalid:1\",permitlisten=\"127.0.0.1:8080\",permitlisten=\"localhost:9090\",permitlisten=\"*:7070\" "))
    }

    @Test func allowedFromBecomesFrom() throws {
        let text = try line("local_forward = \"1:a:2\"", allowedFrom: "allowed_from = [\"203.0.113.7\", \"10.0.0.0/8\"]")
        #expect(text.hasPrefix("from=\"203.0.113.7,10.0.0.0/8\",restrict,port-forwarding,"))
    }

    @Test func whatCannotBeLimitedIsSaidAndNotPretended() throws {
        let socks = try tunnel("dynamic_forward = \"1080\"")
        let socksPolicy = AuthorizedKeyPolicy(tunnel: socks)
        #expect(socksPolicy.permitOpen.isEmpty)
        #expect(socksPolicy.notes.first?.contains("SOCKS") == true)
        let sockets = AuthorizedKeyPolicy(tunnel: try tunnel("local_forward = [\"1:a:2\", \"3:/run/pg.sock\"]"))
        #expect(sockets.permitOpen.isEmpty, "sshd refuses every socket forward once permitopen is set")
        #expect(sockets.notes.first?.contains("/run/pg.sock") == true)
    }

    @Test func unsafeCommentIsDroppedNotEscaped() throws {
        let key = try PublicKey.parse(ConfigCases.hostKey + " evil\" command=\"x").get()
        #expect(key.comment == nil)
        #expect(try PublicKey.parse(ConfigCases.hostKey).get().comment == nil)
        #expect(throws: HostKeyParseError.self) { try PublicKey.parse("ssh-ed25519").get() }
    }

    @Test func instructionsNameTheUserStepsAndAllowlist() throws {
        let t = try tunnel("local_forward = \"127.0.0.1:15432:db.internal:5432\"")
        let policy = AuthorizedKeyPolicy(tunnel: t)
        let text = BastionSetup.instructions(tunnel: t, user: "tunnel", userFromConfig: true, line: try renderer().line(policy, key: Self.key), policy: policy)
        for expected in [
            "user tunnel on bastion.example.com (port 22)",
            "id tunnel || useradd --create-home --shell /usr/sbin/nologin tunnel",
            "mkdir -p ~tunnel/.ssh && chmod 700 ~tunnel/.ssh",
            "echo 'restrict,port-forwarding,",
            "' >> ~tunnel/.ssh/authorized_keys",
            "chmod 600 ~tunnel/.ssh/authorized_keys",
            "chown -R tunnel: ~tunnel/.ssh",
            "TCP to bastion.example.com port 22 from this machine's public address",
            "TCP from the bastion to db.internal:5432",
            "nc -z db.internal 5432",
            "Set `allowed_from`",
        ] {
            #expect(text.contains(expected), "missing: \(expected)\n\(text)")
        }
    }

    /// root exists on every bastion: the steps never offer `useradd root`, and
    /// say why root is the user and how to use another.
    @Test(arguments: [true, false])
    func rootIsNeverCreatedAndADedicatedUserIsSuggested(_ fromConfig: Bool) throws {
        let t = try tunnel("local_forward = \"127.0.0.1:15432:db.internal:5432\"")
        let policy = AuthorizedKeyPolicy(tunnel: t)
        let text = BastionSetup.instructions(tunnel: t, user: "root", userFromConfig: fromConfig, line: try renderer().line(policy, key: Self.key), policy: policy)
        #expect(!text.contains("useradd"), "\(text)")
        #expect(text.contains("The tunnel logs in as root"))
        #expect(text.contains("(the config sets no `user`, and warren runs as root)") == !fromConfig, "\(text)")
        #expect(text.contains("PermitRootLogin must be prohibit-password"))
        #expect(text.contains("  1. its ~/.ssh, 0700"), "the steps start at ~/.ssh: \(text)")
        #expect(text.contains("mkdir -p ~root/.ssh && chmod 700 ~root/.ssh"))
    }
}
