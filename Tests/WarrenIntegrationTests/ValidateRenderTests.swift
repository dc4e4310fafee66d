import Foundation
import Testing
import WarrenTestSupport

/// `warren validate` and `warren render` as a user runs them: the real binary,
/// real files, and the real `ssh -G` judging what was rendered.
@Suite struct ValidateRenderTests {
    /// A bare lab with a key file and a config written from `text` (`@KEY@`
    /// and `@STATE@` replaced by the key's path and the lab's state directory).
    struct Scratch {
        let lab: Lab
        var directory: String { lab.directory.path }
        var config: String { lab.configPath }
        var state: String { lab.stateDir }

        init(_ text: String) throws {
            lab = try Lab(prefix: "warren-vr-", sshd: nil)
            let key = try lab.directory.write("not a real key, only has to exist\n", to: "id_ed25519", mode: 0o600)
            let body = text.replacingOccurrences(of: "@KEY@", with: key).replacingOccurrences(of: "@STATE@", with: state)
            try lab.directory.write(body, to: "warren.toml", mode: 0o644)
        }

        func remove() { lab.stop() }
    }

    @Test func validConfigValidates() async throws {
        let scratch = try Scratch(ConfigCases.valid)
        defer { scratch.remove() }
        let result = try await CommandRunner.warren(["validate", "--config", scratch.config])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("OK, 5 tunnels"))
        #expect(!FileManager.default.fileExists(atPath: scratch.state), "validate writes nothing")
    }

    @Test(arguments: ConfigCases.bad)
    func badConfigExits78AndWritesNothing(_ bad: ConfigCases.Bad) async throws {
        // A state_dir line comes first (so a wrong render would write under the
        // scratch directory), unless the case is about state_dir itself.
        let ownsStateDir = bad.text.contains("state_dir")
        let scratch = try Scratch(ownsStateDir ? bad.text : "state_dir = \"@STATE@\"\n" + bad.text)
        defer { scratch.remove() }
        for command in [["validate"], ["render", "db"]] {
            let result = try await CommandRunner.warren(command + ["--config", scratch.config, "--state-dir", scratch.state])
            #expect(result.status == 78, "\(bad.name) \(command): \(result)")
            #expect(result.stderr.contains(scratch.config), "\(bad.name): the error names the file: \(result.stderr)")
            // The state_dir line shifts the text by one line; key paths stay as they are.
            let expected: String
            if let colon = bad.path.firstIndex(of: ":"), let line = Int(bad.path[..<colon]) {
                expected = "\(scratch.config):\(line + (ownsStateDir ? 0 : 1)):\(bad.path[bad.path.index(after: colon)...])"
            } else {
                expected = "\(scratch.config): \(bad.path):"
            }
            #expect(result.stderr.contains(expected), "\(bad.name): expected \(expected) in \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: scratch.state), "\(bad.name): nothing is written")
        }
    }

    @Test func missingConfigFileExits78() async throws {
        let result = try await CommandRunner.warren(["validate", "--config", "/nonexistent/warren.toml"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("/nonexistent/warren.toml: the config file does not exist"))
    }

    @Test(arguments: ["local", "remote", "socks", "sockets", "jumped"])
    func renderedConfigIsAcceptedBySSH(_ name: String) async throws {
        let scratch = try Scratch(ConfigCases.valid)
        defer { scratch.remove() }
        let result = try await CommandRunner.warren(["render", name, "--config", scratch.config])
        #expect(result.status == 0, "\(result)")
        let directory = "\(scratch.state)/tunnels/\(name)"
        let sshConfig = "\(directory)/ssh_config"
        #expect(result.stdout.contains("# \(sshConfig)"))

        for (path, mode) in [(directory, 0o700), (sshConfig, 0o600), ("\(directory)/known_hosts", 0o600)] {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? Int) == mode, "\(path) mode")
        }

        let resolved = try await CommandRunner.run("/usr/bin/ssh", ["-G", "-F", sshConfig, "-N", "warren-\(name)"])
        #expect(resolved.status == 0, "ssh -G refused the rendered config: \(resolved)")
        let settings = Set(resolved.stdout.split(separator: "\n").map(String.init))
        for line in [
            "identitiesonly yes", "batchmode yes", "exitonforwardfailure yes", "globalknownhostsfile /dev/null",
            "userknownhostsfile \(directory)/known_hosts", "hostkeyalias warren-\(name)", "connecttimeout 4",
            "serveraliveinterval 5", "serveralivecountmax 2", "identityfile \(scratch.directory)/id_ed25519",
        ] {
            #expect(settings.contains(line), "\(name): ssh -G lacks \(line)")
        }
        switch name {
        case "local":
            #expect(settings.contains("hostname bastion.example.com"))
            #expect(settings.contains("localforward [127.0.0.1]:15432 [db.internal]:5432"))
            #expect(settings.contains("localforward [::1]:15433 [db.internal]:5432"))
            #expect(settings.contains("stricthostkeychecking true"))
        case "remote":
            #expect(settings.contains("port 2222"))
            #expect(settings.contains("remoteforward [127.0.0.1]:8080 [localhost]:80"))
            #expect(settings.contains("remoteforward 9090 [socks]:0"))
        case "socks":
            #expect(settings.contains("dynamicforward [127.0.0.1]:1080"))
            #expect(settings.contains("stricthostkeychecking accept-new"))
        case "sockets":
            #expect(settings.contains("localforward /tmp/warren-test.sock [db.internal]:5432"))
            #expect(settings.contains("localforward 15434 /run/postgresql/.s.PGSQL.5432"))
        case "jumped":
            // The hops are chained by ProxyCommand (what ProxyJump would run), so that each hop's ssh logs where warren reads ssh's own words.
            #expect(settings.contains { $0.hasPrefix("proxycommand ") && $0.hasSuffix("-W '[%h]:%p' warren-jumped-jump2") && $0.contains("-E \"${WARREN_SSH_LOG:-/dev/stderr}\"") }, "\(settings)")
            let hop = try await CommandRunner.run("/usr/bin/ssh", ["-G", "-F", sshConfig, "-N", "warren-jumped-jump2"])
            #expect(hop.stdout.contains("hostname jump2.example.com\n") && hop.stdout.contains("port 2200\n") && hop.stdout.contains("user hop\n"), "\(hop)")
            #expect(hop.stdout.contains("hostkeyalias warren-jumped-jump2\n"))
            #expect(hop.stdout.contains("-W '[%h]:%p' warren-jumped-jump1\n"), "the second hop goes through the first")
        default:
            Issue.record("no expectations for \(name)")
        }
    }

    @Test func renderRewritesOnlyWhenContentChanges() async throws {
        let scratch = try Scratch(ConfigCases.valid)
        defer { scratch.remove() }
        let sshConfig = "\(scratch.state)/tunnels/local/ssh_config"
        _ = try await CommandRunner.warren(["render", "local", "--config", scratch.config])
        let first = try FileManager.default.attributesOfItem(atPath: sshConfig)[.systemFileNumber] as? Int
        _ = try await CommandRunner.warren(["render", "local", "--config", scratch.config])
        let second = try FileManager.default.attributesOfItem(atPath: sshConfig)[.systemFileNumber] as? Int
        #expect(first != nil && first == second, "unchanged content is not rewritten (same inode)")

        let changed = try String(contentsOfFile: scratch.config, encoding: .utf8).replacingOccurrences(of: "connect_timeout = 4", with: "connect_timeout = 7")
        try changed.write(toFile: scratch.config, atomically: true, encoding: .utf8)
        _ = try await CommandRunner.warren(["render", "local", "--config", scratch.config])
        let third = try FileManager.default.attributesOfItem(atPath: sshConfig)[.systemFileNumber] as? Int
        #expect(third != second, "changed content is replaced by rename (new inode)")
        #expect(try String(contentsOfFile: sshConfig, encoding: .utf8).contains("ConnectTimeout 7"))
    }

    @Test func unknownTunnelNamesTheOnesThereAre() async throws {
        let scratch = try Scratch(ConfigCases.valid)
        defer { scratch.remove() }
        let result = try await CommandRunner.warren(["render", "nope", "--config", scratch.config])
        #expect(result.status == 78)
        #expect(result.stderr.contains("no tunnel named \"nope\"; tunnels: jumped, local, remote, sockets, socks"))
    }
}
