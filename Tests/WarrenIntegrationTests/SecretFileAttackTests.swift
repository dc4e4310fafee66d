import Foundation
import Testing
import WarrenCore
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 19, item 4: a key or secret file another user (nobody) owns is
/// refused by `validate`, and the askpass helper opens the secret the same
/// checked way at every login, so one swapped after validation is not printed.
@Suite(.serialized) struct SecretFileAttackTests {
    static var nobody: passwd { getpwnam("nobody")!.pointee }

    func config(_ lab: Lab, key: String, extra: String) -> String {
        """
        [tunnels.db]
        host = "127.0.0.1"
        port = 1
        identity_file = "\(key)"
        host_key = "\(ConfigCases.hostKey)"
        local_forward = ["127.0.0.1:15001:127.0.0.1:5432"]
        \(extra)
        """
    }

    @Test func aKeyAndAPassphraseFileOwnedByNobodyAreRefused() async throws {
        let lab = try Lab(prefix: "sec-", sshd: nil)
        defer { lab.stop() }
        chmod(lab.directory.path, 0o711)
        let key = try lab.directory.write("not a real key\n", to: "id_ed25519", mode: 0o600)
        let passphrase = try lab.directory.write("", to: "passphrase", mode: 0o600)
        try lab.writeConfig(config(lab, key: key, extra: "passphrase_file = \"\(passphrase)\""))
        #expect(try await lab.warren(["validate"]).status == 0, "root's own files pass")

        for file in [key, passphrase] { #expect(chown(file, Self.nobody.pw_uid, Self.nobody.pw_gid) == 0) }
        // nobody now controls both: what it writes would be ssh's key and passphrase.
        let wrote = try await LocalAttacker.run(["/bin/sh", "-c", "printf 'theirs' > \(passphrase)"])
        try #require(wrote.status == 0, "\(wrote)")
        let result = try await lab.warren(["validate"])
        #expect(result.status == 78, "\(result)")
        #expect(result.stderr.contains("tunnels.db.identity_file: identity file \(key) is owned by nobody"), "\(result)")
        #expect(result.stderr.contains("tunnels.db.passphrase_file: \(passphrase) is owned by nobody"), "\(result)")
    }

    @Test func theAskpassHelperRefusesASecretSwappedAfterValidation() async throws {
        let lab = try Lab(prefix: "sec-", sshd: nil)
        defer { lab.stop() }
        let key = try lab.directory.write("not a real key\n", to: "id_ed25519", mode: 0o600)
        let password = try lab.directory.write("the-password\n", to: "password", mode: 0o600)
        let elsewhere = try lab.makeDirectory(prefix: "other-")
        let rootOnly = try elsewhere.write("root-only-secret\n", to: "shadow", mode: 0o600)
        try lab.writeConfig(config(lab, key: key, extra: "password_file = \"\(password)\""))
        let render = try await lab.warren(["render", "db"])
        try #require(render.status == 0, "\(render)")
        let askpass = lab.tunnelFile("db", "askpass")
        let prompt = "tunnel@127.0.0.1's password: "

        let fine = try await CommandRunner.run(askpass, [prompt])
        #expect(fine.status == 0 && fine.stdout == "the-password\n", "the helper prints the checked file: \(fine)")

        // Swapped for a link to a root-only file: not followed, nothing printed.
        try FileManager.default.removeItem(atPath: password)
        #expect(symlink(rootOnly, password) == 0)
        let linked = try await CommandRunner.run(askpass, [prompt])
        #expect(linked.status != 0 && linked.stdout.isEmpty, "\(linked)")
        #expect(linked.stderr.contains("warren askpass: \(password) is a link to \(rootOnly), outside its directory"), "\(linked)")
        #expect(!linked.stdout.contains("root-only") && !linked.stderr.contains("root-only-secret"))

        // Given to nobody, or opened up to others: refused at use too.
        try FileManager.default.removeItem(atPath: password)
        _ = try lab.directory.write("the-password\n", to: "password", mode: 0o600)
        #expect(chown(password, Self.nobody.pw_uid, Self.nobody.pw_gid) == 0)
        let theirs = try await CommandRunner.run(askpass, [prompt])
        #expect(theirs.status != 0 && theirs.stdout.isEmpty && theirs.stderr.contains("is owned by nobody"), "\(theirs)")
        #expect(chown(password, 0, 0) == 0 && chmod(password, 0o644) == 0)
        let open = try await CommandRunner.run(askpass, [prompt])
        #expect(open.status != 0 && open.stdout.isEmpty && open.stderr.contains("is readable by others (mode 644)"), "\(open)")
    }
}
