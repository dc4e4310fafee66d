import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// Finding 12 of the security review: a tunnel that does not check host keys
/// says so everywhere an operator or a monitor looks, not only in the log.
@Suite(.serialized) struct InsecurePolicyTests {
    @Test func insecureNoCheckIsAWarningInCheckStatusAndMetrics() async throws {
        let lab = try Lab(prefix: "sec-insecure-")
        defer { lab.stop() }
        let sshd = lab.sshd, target = lab.target
        let localPort = try FreePort.find()
        let metricsPort = try FreePort.find()
        let config = """
            [tunnels.db]
            host = "127.0.0.1"
            port = \(sshd.port)
            user = "\(sshd.user)"
            identity_file = "\(sshd.clientKeyPath)"
            host_key_policy = "insecure-no-check"
            connect_timeout = 3
            probe_interval = 1
            local_forward = ["127.0.0.1:\(localPort):127.0.0.1:\(target.port)"]
            """
        let supervisor = try lab.startSupervisor(config: config, arguments: ["--metrics-listen", "127.0.0.1:\(metricsPort)"])
        defer { supervisor.stop() }
        try #require(supervisor.waitForState("db", .up), "\(supervisor.logText())")

        #expect(supervisor.logText().contains("host key checking is OFF"), "every start warns")
        #expect(supervisor.tunnel("db")?.hostKeyChecked == false, "status.json says so")
        let raw = try String(contentsOfFile: supervisor.stateDir + "/status.json", encoding: .utf8)
        #expect(raw.contains("\"host_key_checked\" : false"), "\(raw)")

        let metrics = try PrometheusExposition.parse(try HTTPClient.request(port: metricsPort, path: "/metrics").body)
        #expect(metrics.value("warren_tunnel_host_key_checked", ["tunnel": "db"]) == 0)
        #expect(metrics.value("warren_tunnel_up", ["tunnel": "db"]) == 1)

        let check = try await CommandRunner.warren(["check", "--config", supervisor.configPath, "--state-dir", supervisor.stateDir])
        #expect(check.status == 1, "WARNING, not OK: \(check)")
        #expect(check.stdout.hasPrefix("WARREN WARNING - 1/1 tunnel up, 1 without host key checking"), "\(check)")
        #expect(check.stdout.contains("db: up (host_key_not_checked)"), "\(check)")

        let status = try await CommandRunner.warren(["status", "--config", supervisor.configPath, "--state-dir", supervisor.stateDir])
        #expect(status.stdout.contains("warning: db: host keys are not checked"), "\(status)")
    }
}
