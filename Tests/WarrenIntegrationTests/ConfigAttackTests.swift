import Foundation
import Testing
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Findings 3, 11 of the security review as attacks on the real binary: what
/// a config or its location smuggles in is refused with exit 78, naming the
/// key, and nothing is written or run.
@Suite(.serialized) struct ConfigAttackTests {
    func tunnel(identity: String, stateDir: String = "state") -> String {
        """
        state_dir = "\(stateDir)"
        [tunnels.db]
        host = "127.0.0.1"
        port = 1
        identity_file = "\(identity)"
        host_key = "\(ConfigCases.hostKey)"
        local_forward = ["127.0.0.1:1:127.0.0.1:5432"]
        """
    }

    /// A directory named with a newline and a ProxyCommand: a relative
    /// state_dir joined to it used to write the ProxyCommand into ssh_config.
    @Test func newlineInTheConfigDirectoryInjectsNothing() async throws {
        let dir = try TemporaryDirectory(prefix: "sec-nl-")
        defer { dir.remove() }
        let marker = dir.appending("pwned")
        let evil = dir.appending("x\nProxyCommand touch \(marker)")
        try FileManager.default.createDirectory(atPath: evil, withIntermediateDirectories: true)
        let key = try dir.write("key\n", to: "id", mode: 0o600)
        let config = evil + "/warren.toml"
        try tunnel(identity: key).write(toFile: config, atomically: true, encoding: .utf8)
        for command in [["validate"], ["render", "db"]] {
            let result = try await CommandRunner.warren(command + ["--config", config])
            #expect(result.status == 78, "\(command): \(result)")
            #expect(result.stderr.contains("newline"), "\(result)")
            #expect(!result.stderr.contains("\nProxyCommand"), "the path is printed escaped: \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: evil + "/state"), "nothing is written")
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    /// Finding 11: a FIFO or a device as identity_file is a config error naming the key.
    @Test(arguments: ["fifo", "/dev/zero"])
    func identityFileMustBeARegularFile(_ kind: String) async throws {
        let dir = try TemporaryDirectory(prefix: "sec-id-")
        defer { dir.remove() }
        var identity = kind
        if kind == "fifo" {
            identity = dir.appending("fifo")
            #expect(mkfifo(identity, 0o600) == 0)
        }
        let config = try dir.write(tunnel(identity: identity), to: "warren.toml")
        let result = try await CommandRunner.warren(["validate", "--config", config])
        #expect(result.status == 78, "\(result)")
        #expect(result.stderr.contains("tunnels.db.identity_file") && result.stderr.contains("not a regular file"), "\(result)")
    }

    /// Findings 8 and 13 on SIGHUP: a config that once crashed warren (20000
    /// dotted parts) or hid everything after a NUL is refused, the running
    /// config is kept, and the multi-line error stays one log line.
    @Test func invalidConfigOnReloadKeepsTheRunningOne() async throws {
        let lab = try Lab(prefix: "sec-hup-", sshd: nil)
        defer { lab.stop() }
        let key = try lab.directory.write("key\n", to: "id", mode: 0o600)
        let good = tunnel(identity: key, stateDir: lab.stateDir)
        let supervisor = try lab.startSupervisor(config: good)
        defer { supervisor.stop() }
        #expect(supervisor.waitFor("db", timeout: .seconds(20)) { _ in true } != nil, "\(supervisor.logText())")
        let deep = String(repeating: "a.", count: 20000) + "b = 1\n" + good
        let multi = good + "\nbogus = 1\n[tunnels.db2]\nhost = \"x y\"\n"
        let nul = "# \u{0}\n" + multi
        for (index, bad) in [deep, nul, multi].enumerated() {
            try supervisor.reload(with: bad)
            let kept = waitUntil(timeout: .seconds(20)) {
                supervisor.logText().components(separatedBy: "keeping the running one").count > index + 1
            }
            #expect(kept, "\(supervisor.logText())")
            #expect(supervisor.process.isAlive, "the supervisor survives the bad config")
        }
        let log = supervisor.logText()
        #expect(log.contains("keys nested deeper than 32 levels"), "\(log)")
        #expect(log.contains("a NUL byte is not allowed"), "\(log)")
        #expect(supervisor.tunnel("db") != nil, "the running tunnel is still reported")
        for line in log.split(separator: "\n") {
            #expect(line.hasPrefix("20"), "every log line is warren's own, with its timestamp: \(line)")
        }
    }
}

/// Finding 10: a template planted above a binary that is not in a source
/// tree's .build (or an installed prefix) is never used.
@Suite(.serialized) struct TemplateSearchTests {
    @Test func aTemplatePlantedAboveTheBinaryIsNotUsed() async throws {
        let dir = try TemporaryDirectory(prefix: "sec-tpl-")
        defer { dir.remove() }
        let marker = dir.appending("pwned")
        try FileManager.default.createDirectory(atPath: dir.appending("Templates"), withIntermediateDirectories: true)
        try dir.write("{{% CONTENT_TYPE: TEXT }}\nHost *\n  ProxyCommand touch \(marker)\n", to: "Templates/ssh_config.mustache")
        try dir.write("{{% CONTENT_TYPE: TEXT }}\n", to: "Templates/known_hosts.mustache")
        try FileManager.default.createDirectory(atPath: dir.appending("a/b"), withIntermediateDirectories: true)
        let binary = dir.appending("a/b/warren")
        try FileManager.default.copyItem(atPath: CommandLine.warrenBinaryPath, toPath: binary)
        let key = try dir.write("key\n", to: "id", mode: 0o600)
        let config = try dir.write("""
            state_dir = "\(dir.appending("state"))"
            [tunnels.db]
            host = "127.0.0.1"
            identity_file = "\(key)"
            host_key = "\(ConfigCases.hostKey)"
            local_forward = ["127.0.0.1:1:127.0.0.1:5432"]
            """, to: "warren.toml")
        let result = try await CommandRunner.run(binary, ["render", "db", "--config", config], environment: ["WARREN_TEMPLATES": ""])
        #expect(result.status == 78, "\(result)")
        #expect(result.stderr.contains("cannot find warren's templates"), "\(result)")
        #expect(!result.stdout.contains("ProxyCommand"), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: dir.appending("state/tunnels/db/ssh_config")))
    }
}

extension CommandLine {
    /// The real binary, symlinks resolved (a copy of it is moved elsewhere).
    static var warrenBinaryPath: String {
        URL(fileURLWithPath: CommandRunner.warrenBinary).resolvingSymlinksInPath().path
    }
}

/// keygen takes --state-dir without a valid config: a path that fails the
/// rules is refused, not silently replaced by the default state directory.
@Suite struct KeygenStateDirTests {
    @Test func keygenRefusesAStateDirWithADollar() async throws {
        let dir = try TemporaryDirectory(prefix: "sec-kg-")
        defer { dir.remove() }
        // Before, the default state directory (/var/lib/warren for root) got the key instead.
        let result = try await CommandRunner.warren(["keygen", "--state-dir", dir.appending("${HOME}")])
        #expect(result.status == 78, "\(result)")
        #expect(result.stderr.contains("'$'"), "\(result)")
        #expect(!result.stderr.contains("Created"), "no key anywhere: \(result)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) == [])
    }
}
