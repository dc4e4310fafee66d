import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// Defects a new user met in the second week (issue 11, item 7).
@Suite(.serialized) struct OnboardingFixesTests {
    @Test func statusWithABadConfigNamesTheConfigError() async throws {
        try await withTemporaryDirectory(prefix: "wst-") { dir in
            let config = try dir.write("state_dir = \"\(dir.appending("state"))\"\n[tunnels.db]\nhots = \"bastion\"\n", to: "bad.toml")
            let result = try await CommandRunner.warren(["status", "--config", config])
            #expect(result.status == 78, "\(result)")
            #expect(result.stderr.contains("\(config): tunnels.db.hots: unknown key \"hots\" in a tunnel; did you mean \"host\"?"), "\(result)")
            #expect(result.stderr.contains("the config is invalid"))
        }
    }

    @Test func forgettingALearnedHostKeyAfterTheBastionChanged() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let local = try lab.forward()
        let config = SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec])
            .replacingOccurrences(of: "host_key = \"\(SSHKeygen.keyWithoutComment(lab.sshd.hostKeyLine))\"", with: "host_key_policy = \"accept-new\"")
        do {
            let warren = try lab.startSupervisor(config: config)
            defer { warren.stop() }
            try require(warren.waitForState("db", .up), "up, learning the key", warren)
        }
        _ = try lab.sshd.rotateHostKey()
        let paths = ["--config", lab.configPath, "--state-dir", lab.stateDir]

        let doctor = try await CommandRunner.warren(["doctor", "db", "--json"] + paths)
        let report = try JSONDecoder().decode(DoctorReport.self, from: Data(doctor.stdout.utf8))
        let failed = try #require(report.failedSteps.first, "\(doctor)")
        #expect(failed.kind == "host_key_changed", "\(doctor)")
        #expect(FailureKind.hostKeyChanged.hint.contains("warren hostkey --forget"))

        let forget = try await CommandRunner.warren(["hostkey", "db", "--forget"] + paths)
        #expect(forget.status == 0, "\(forget)")
        #expect(forget.stdout.contains("forgot 1 learned host key"), "\(forget)")

        let warren = try lab.startSupervisor(config: config, name: "again")
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "up again, learning the new key", warren)
        let knownHosts = try String(contentsOfFile: warren.stateDir + "/tunnels/db/known_hosts", encoding: .utf8)
        #expect(knownHosts.contains(SSHKeygen.keyWithoutComment(lab.sshd.hostKeyLine)))
    }
}
