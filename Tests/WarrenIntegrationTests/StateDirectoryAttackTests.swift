import Foundation
import Testing
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Finding 1 and 4 of the security review, as the attacks: a less privileged
/// user (`nobody`) who can write in warren's state directory plants links, and
/// root's warren runs over it. Each test asserts the safe outcome: warren
/// refuses with an error that names the path and the fix, and what the link
/// pointed at is untouched.
@Suite(.serialized) struct StateDirectoryAttackTests {
    /// A root-owned scratch directory that `nobody` may pass through (0711),
    /// with a root-only secret in it and a config whose state_dir is `state`.
    struct AttackScene {
        let lab: Lab
        let secret: String
        var state: String { lab.stateDir }

        init() throws {
            lab = try Lab(prefix: "sec-", sshd: nil)
            chmod(lab.directory.path, 0o711)
            secret = try lab.directory.write("root's secret\n", to: "secret", mode: 0o600)
            let key = try lab.directory.write("not a real key\n", to: "id_ed25519", mode: 0o600)
            try lab.writeConfig("""
                [tunnels.db]
                host = "127.0.0.1"
                port = 1
                identity_file = "\(key)"
                host_key = "\(ConfigCases.hostKey)"
                local_forward = ["127.0.0.1:1:127.0.0.1:5432"]
                """)
        }

        /// The state directory, made and given to `nobody` (what the shipped unit does for its user).
        func stateOwnedByNobody() throws {
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            let nobody = getpwnam("nobody")!.pointee
            #expect(chown(state, nobody.pw_uid, nobody.pw_gid) == 0)
            chmod(state, 0o700)
        }

        /// Runs `command` as nobody (setpriv), to plant what an attacker would.
        func asNobody(_ command: [String]) async throws {
            let result = try await LocalAttacker.run(command)
            try #require(result.status == 0, "as nobody: \(command): \(result)")
        }

        func secretIsIntact() -> Bool {
            (try? String(contentsOfFile: secret, encoding: .utf8)) == "root's secret\n"
        }
    }

    /// Runs `warren run` on the scene for at most a few seconds: the safe
    /// outcome is a quick refusal; the unsafe one runs on, so it is stopped.
    func runBriefly(_ scene: AttackScene) async throws -> (status: Int32?, log: String) {
        let process = try scene.lab.spawn(CommandRunner.warrenBinary, ["run", "--config", scene.lab.configPath], log: "run.log")
        let status = process.waitForExit(timeout: .seconds(5))
        if status == nil { _ = process.terminate() }
        return (status, process.logText())
    }

    @Test func lockLinkPlantedByNobodyDoesNotOverwriteRootsFile() async throws {
        let scene = try AttackScene()
        defer { scene.lab.stop() }
        try scene.stateOwnedByNobody()
        try await scene.asNobody(["ln", "-s", scene.secret, "\(scene.state)/warren.lock"])
        let (status, log) = try await runBriefly(scene)
        #expect(scene.secretIsIntact(), "the file the link points at is untouched")
        #expect(status != nil && status != 0, "warren refuses the state directory: \(log)")
        #expect(log.contains("owned by nobody"), "the error says what is wrong: \(log)")
        #expect(log.contains("sudo -u nobody"), "and the fix: \(log)")
    }

    @Test func danglingLockLinkCreatesNothing() async throws {
        let scene = try AttackScene()
        defer { scene.lab.stop() }
        try scene.stateOwnedByNobody()
        let planted = scene.lab.directory.appending("nologin")
        try await scene.asNobody(["ln", "-s", planted, "\(scene.state)/warren.lock"])
        _ = try await runBriefly(scene)
        #expect(!FileManager.default.fileExists(atPath: planted), "a dangling link does not create its target")
    }

    @Test func lockLinkInOwnStateDirectoryIsRefused() async throws {
        let scene = try AttackScene()
        defer { scene.lab.stop() }
        try FileManager.default.createDirectory(atPath: scene.state, withIntermediateDirectories: true)
        chmod(scene.state, 0o700)
        symlink(scene.secret, "\(scene.state)/warren.lock")
        let (status, log) = try await runBriefly(scene)
        #expect(scene.secretIsIntact())
        #expect(status != nil && status != 0, "\(log)")
        #expect(log.contains("warren.lock is not a regular file"), "\(log)")
    }

    /// `tunnels/db -> victim`: render must neither chmod the victim nor write into it.
    @Test(arguments: [true, false])
    func tunnelDirectoryLinkIsNotFollowed(plantedByNobody: Bool) async throws {
        let scene = try AttackScene()
        defer { scene.lab.stop() }
        let victim = scene.lab.directory.appending("victim")
        try FileManager.default.createDirectory(atPath: victim, withIntermediateDirectories: true)
        chmod(victim, 0o755)
        try "ORIGINAL\n".write(toFile: victim + "/known_hosts", atomically: false, encoding: .utf8)
        if plantedByNobody {
            try scene.stateOwnedByNobody()
            try await scene.asNobody(["mkdir", "-m", "0700", "\(scene.state)/tunnels"])
            try await scene.asNobody(["ln", "-s", victim, "\(scene.state)/tunnels/db"])
        } else {
            try FileManager.default.createDirectory(atPath: scene.state + "/tunnels", withIntermediateDirectories: true)
            chmod(scene.state, 0o700)
            symlink(victim, "\(scene.state)/tunnels/db")
        }
        let result = try await scene.lab.warren(["render", "db"])
        #expect(result.status != 0, "\(result)")
        #expect(Lab.mode(victim) == 0o755, "the victim directory is not chmodded")
        #expect((try? String(contentsOfFile: victim + "/known_hosts", encoding: .utf8)) == "ORIGINAL\n")
        #expect(!FileManager.default.fileExists(atPath: victim + "/ssh_config"))
        #expect(result.stderr.contains(plantedByNobody ? "owned by nobody" : "is a symbolic link"), "\(result)")
    }

    /// Finding 4: `--state-dir` at a shared sticky directory stays 1777 and is refused, explained.
    @Test func sharedStickyDirectoryIsRefusedNotChmodded() async throws {
        let scene = try AttackScene()
        defer { scene.lab.stop() }
        let shared = scene.lab.directory.appending("shared")
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        chmod(shared, 0o1777)
        let result = try await scene.lab.warren(["render", "db", "--state-dir", shared])
        #expect(result.status != 0, "\(result)")
        #expect(Lab.mode(shared) == 0o1777, "an existing directory is never chmodded")
        #expect(result.stderr.contains("group- or world-writable (mode 1777)"), "\(result)")
        #expect(result.stderr.contains("chmod go-w"), "the fix: \(result)")
        let doctor = try await scene.lab.warren(["doctor", "db", "--state-dir", shared])
        #expect(doctor.status == 1, "\(doctor)")
        #expect(doctor.stdout.contains("world-writable") && doctor.stdout.contains("chmod go-w"), "doctor says what and the fix: \(doctor)")
    }

    /// Finding 4: under umask 000 the directories warren creates are still private.
    @Test func createdDirectoriesArePrivateUnderUmaskZero() async throws {
        let scene = try AttackScene()
        defer { scene.lab.stop() }
        let state = scene.lab.directory.appending("a/b/state")
        let result = try await CommandRunner.run(
            "/bin/sh", ["-c", "umask 000; exec \"$0\" \"$@\"", CommandRunner.warrenBinary,
                        "render", "db", "--config", scene.lab.configPath, "--state-dir", state])
        #expect(result.status == 0, "\(result)")
        for dir in ["a", "a/b", "a/b/state", "a/b/state/tunnels", "a/b/state/tunnels/db"] {
            #expect(Lab.mode(scene.lab.directory.appending(dir)) == 0o700, "\(dir)")
        }
        #expect(Lab.mode(state + "/tunnels/db/ssh_config") == 0o600)
    }

    /// keygen into a key directory that is a link: refused, the link's target untouched.
    @Test func keygenDoesNotFollowAKeysLink() async throws {
        let scene = try AttackScene()
        defer { scene.lab.stop() }
        let victim = scene.lab.directory.appending("victim")
        try FileManager.default.createDirectory(atPath: victim, withIntermediateDirectories: true)
        chmod(victim, 0o755)
        try scene.stateOwnedByNobody()
        try await scene.asNobody(["ln", "-s", victim, "\(scene.state)/keys"])
        let result = try await scene.lab.warren(["keygen"])
        #expect(result.status != 0, "\(result)")
        #expect(Lab.mode(victim) == 0o755)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: victim)) == [], "nothing written through the link")
    }
}
