import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// `warren status` and the log formats, as a user sees them.
@Suite(.serialized) struct StatusCommandTests {
    @Test func statusPrintsTheTableAndJSON() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (warren, _) = try lab.startOneTunnel("warehouse")
        defer { warren.stop() }
        let table = try await CommandRunner.warren(["status", "--config", warren.configPath, "--state-dir", warren.stateDir])
        #expect(table.status == 0, "\(table)")
        #expect(table.stdout.contains("supervisor pid \(warren.process.pid)"))
        let row = table.stdout.split(separator: "\n").first { $0.hasPrefix("warehouse ") }
        #expect(row?.contains(" up ") == true, "\(table.stdout)")

        let json = try await CommandRunner.warren(["status", "--json", "--state-dir", warren.stateDir, "--config", warren.configPath])
        #expect(json.status == 0)
        let report = try JSONDecoder().decode(StatusReport.self, from: Data(json.stdout.utf8))
        #expect(report.tunnels.map(\.name) == ["warehouse"])
        #expect(report.tunnels[0].state == .up)
        // The documented field names, as scripts read them.
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(Set(object.keys).isSuperset(of: ["supervisor_pid", "running", "tunnels", "updated_at"]))
        let tunnel = try #require((object["tunnels"] as? [[String: Any]])?.first)
        #expect(Set(tunnel.keys).isSuperset(of: ["name", "state", "since", "pid", "restarts", "forwards"]))
    }

    @Test func statusShowsTheErrorAndItsFix() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        try lab.sshd.setAuthorizedKeys([])
        let local = try lab.forward()
        let warren = try lab.startSupervisor(config: SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec]))
        defer { warren.stop() }
        try require(warren.waitForState("db", .failed), "db failed", warren)
        let table = try await CommandRunner.warren(["status", "--state-dir", warren.stateDir, "--config", warren.configPath])
        #expect(table.stdout.contains("db: auth_failed: "))
        #expect(table.stdout.contains("fix: the bastion refused the key"))
        #expect(table.stdout.contains("`warren authorized-key db`"), "the fix names the tunnel: \(table.stdout)")
        #expect(table.stdout.contains("next retry: "))
    }

    @Test func noStatusExits3() async throws {
        let directory = try TemporaryDirectory(prefix: "wst-")
        defer { directory.remove() }
        let result = try await CommandRunner.warren(["status", "--state-dir", directory.path, "--config", "/nonexistent.toml"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("no supervisor status"))
    }

    @Test func jsonLogsHaveOneObjectPerLine() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let local = try lab.forward()
        let warren = try lab.startSupervisor(
            config: SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec]),
            arguments: ["--log-format", "json", "--log-level", "info"])
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "db up", warren)
        warren.stop()
        let lines = warren.logText().split(separator: "\n")
        #expect(lines.count >= 3)
        var sawUp = false
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(object?["ts"] != nil && object?["level"] != nil && object?["msg"] != nil, "\(line)")
            if object?["tunnel"] == "db", object?["state"] == "up" { sawUp = true }
        }
        #expect(sawUp)
        #expect(!warren.logText().contains("debug1:"), "ssh's chatter stays out at info")
    }

    @Test func insecureHostKeyPolicyWarnsOnEveryStart() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let local = try lab.forward()
        let config = SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec])
            .replacingOccurrences(of: #"host_key = ""#, with: "host_key_policy = \"insecure-no-check\"\n# was: host_key = \"")
        let warren = try lab.startSupervisor(config: config)
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "db up", warren)
        #expect(warren.logText().contains("host key checking is OFF"))
    }
}
