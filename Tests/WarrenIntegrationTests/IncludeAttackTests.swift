import Foundation
import Testing
import WarrenCore
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 19, item 3: included tunnel files are read only when another user
/// (nobody) could not have written them. Each test plants what an attacker
/// or a careless layout would and runs the real `warren validate` or `run`.
@Suite(.serialized) struct IncludeAttackTests {
    /// A lab nobody may pass through (0711), `include = ["tunnels.d/*.toml"]`
    /// over a root-owned tunnels.d (0755), and a root-only secret beside it.
    struct Scene {
        let lab: Lab
        let tunnels: String
        let secret: String

        init(sshd: Bool = false) throws {
            lab = try Lab(prefix: "inc-", sshd: sshd ? SSHDServer.Options() : nil)
            chmod(lab.directory.path, 0o711)
            tunnels = lab.directory.appending("tunnels.d")
            try FileManager.default.createDirectory(atPath: tunnels, withIntermediateDirectories: false)
            chmod(tunnels, 0o755)
            // Not TOML: a parser would quote it back in its syntax error.
            secret = try lab.directory.write("root-only-secret-line = = =\n", to: "shadow", mode: 0o600)
        }

        func writeMain(_ defaults: String = "host = \"127.0.0.1\"\nport = 1\nhost_key = \"\(ConfigCases.hostKey)\"\nidentity_file = \"/etc/hostname\"") throws {
            try lab.writeConfig("include = [\"tunnels.d/*.toml\"]\n[defaults]\n\(defaults)\n")
        }

        func tunnel(_ name: String, port: Int = 15001) -> String {
            "[tunnels.\(name)]\nlocal_forward = [\"127.0.0.1:\(port):127.0.0.1:5432\"]\n"
        }

        func write(_ text: String, _ name: String, mode: Int = 0o644) throws -> String {
            try lab.directory.write(text, to: "tunnels.d/\(name)", mode: mode)
        }

        func validate() async throws -> CommandResult { try await lab.warren(["validate"]) }
    }

    static var nobody: passwd { getpwnam("nobody")!.pointee }

    @Test func aFileWrittenByNobodyIsRefusedNamingTheFileAndItsOwner() async throws {
        let scene = try Scene()
        defer { scene.lab.stop() }
        try scene.writeMain()
        _ = try scene.write(scene.tunnel("good"), "good.toml")
        // The provisioning user's file, which nobody then rewrites.
        let planted = try scene.write("", "evil.toml")
        #expect(chown(planted, Self.nobody.pw_uid, Self.nobody.pw_gid) == 0)
        let wrote = try await LocalAttacker.run(["/bin/sh", "-c", "printf '[tunnels.evil]\\ndynamic_forward = [\"0.0.0.0:1080\"]\\n' > \(planted)"])
        try #require(wrote.status == 0, "nobody rewrote its file: \(wrote)")
        let result = try await scene.validate()
        #expect(result.status == 78, "\(result)")
        #expect(result.stderr.contains("\(planted): the included file is owned by nobody"), "\(result)")
        #expect(!result.stderr.contains("tunnels.evil"), "nothing of it was read as config: \(result)")
    }

    @Test func aDirectoryNobodyCanWriteInIsRefused() async throws {
        let scene = try Scene()
        defer { scene.lab.stop() }
        try scene.writeMain()
        chmod(scene.tunnels, 0o777)
        let wrote = try await LocalAttacker.run(["/bin/sh", "-c", "printf '[tunnels.evil]\\n' > \(scene.tunnels)/evil.toml"])
        try #require(wrote.status == 0, "nobody wrote into the world-writable directory: \(wrote)")
        let result = try await scene.validate()
        #expect(result.status == 78)
        #expect(result.stderr.contains("\(scene.tunnels)/evil.toml: the included file is in a directory warren does not trust"), "\(result)")
        #expect(result.stderr.contains("group- or world-writable (mode 777)"), "\(result)")
    }

    @Test func linksAreFollowedOnlyWhenTrustedAndInsideTheDirectory() async throws {
        let scene = try Scene()
        defer { scene.lab.stop() }
        try scene.writeMain()
        // Kubernetes ConfigMap volume: c1.toml -> ..data/c1.toml, ..data -> ..2026_12_07_xx, all root's.
        let version = "\(scene.tunnels)/..2026_12_07_01_02_03.123"
        try FileManager.default.createDirectory(atPath: version, withIntermediateDirectories: false)
        chmod(version, 0o755)
        _ = try scene.lab.directory.write(scene.tunnel("c1"), to: "tunnels.d/..2026_12_07_01_02_03.123/c1.toml", mode: 0o644)
        #expect(symlink("..2026_12_07_01_02_03.123", "\(scene.tunnels)/..data") == 0)
        #expect(symlink("..data/c1.toml", "\(scene.tunnels)/c1.toml") == 0)
        let fine = try await scene.validate()
        #expect(fine.status == 0, "the ConfigMap layout is read: \(fine)")

        // A root-owned link to a root-only file outside: refused, its text never shown.
        #expect(symlink(scene.secret, "\(scene.tunnels)/leak.toml") == 0)
        // A link owned by nobody, even one that stays inside.
        #expect(symlink("..data/c1.toml", "\(scene.tunnels)/theirs.toml") == 0)
        #expect(lchown("\(scene.tunnels)/theirs.toml", Self.nobody.pw_uid, Self.nobody.pw_gid) == 0)
        // Up and out through ..
        #expect(symlink("../shadow", "\(scene.tunnels)/up.toml") == 0)
        let result = try await scene.validate()
        #expect(result.status == 78)
        #expect(result.stderr.contains("leak.toml: the included file is a link to \(scene.secret), outside its directory"), "\(result)")
        #expect(result.stderr.contains("theirs.toml: the included file is reached through the link \(scene.tunnels)/theirs.toml, owned by nobody"), "\(result)")
        #expect(result.stderr.contains("up.toml: the included file resolves outside its directory"), "\(result)")
        #expect(!result.stderr.contains("root-only-secret") && !result.stdout.contains("root-only-secret"), "the secret is not quoted: \(result)")
    }

    @Test func aHugeSparseIncludeIsRefusedWithoutReadingIt() async throws {
        let scene = try Scene()
        defer { scene.lab.stop() }
        try scene.writeMain()
        let huge = try scene.write(scene.tunnel("huge"), "huge.toml")
        #expect(truncate(huge, 256 << 20) == 0, "256 MB, sparse")
        let started = ContinuousClock.now
        let result = try await scene.validate()
        #expect(result.status == 78)
        #expect(result.stderr.contains("\(huge): the included file is larger than 1 MB; it was not read"), "\(result)")
        #expect(ContinuousClock.now - started < .seconds(5), "refused from its size, not read")
    }

    @Test func aRefusedIncludeOnSighupKeepsTheRunningConfig() async throws {
        let scene = try Scene(sshd: true)
        defer { scene.lab.stop() }
        let lab = scene.lab
        try scene.writeMain("""
            host = "127.0.0.1"
            port = \(lab.sshd.port)
            user = "\(lab.sshd.user)"
            identity_file = "\(lab.sshd.clientKeyPath)"
            host_key = "\(SSHKeygen.keyWithoutComment(lab.sshd.hostKeyLine))"
            """)
        let a = try lab.forward()
        let file = try scene.write("[tunnels.a]\nlocal_forward = [\"\(a.spec)\"]\n", "a.toml")
        let warren = try lab.startSupervisor()
        defer { warren.stop() }
        try require(warren.waitForState("a", .up), "a up", warren)
        let pid = warren.sshPID("a")
        #expect(chown(file, Self.nobody.pw_uid, Self.nobody.pw_gid) == 0)
        warren.process.signal(SIGHUP)
        #expect(waitUntil(timeout: .seconds(10)) { warren.logText().contains("the included file is owned by nobody") }, "\(warren.logText().suffix(600))")
        #expect(warren.tunnel("a")?.state == .up && warren.sshPID("a") == pid, "a keeps running on the old config")
        #expect(try TCPClient.echo(port: a.port))
    }
}
