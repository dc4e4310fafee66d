import Foundation
import Testing
import WarrenCore
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Connections through a forward, counted from ssh's own log, in status.json,
/// `warren status` and the metrics.
@Suite(.serialized) struct ConnectionMetricsTests {
    @Test func connectionsThroughAForwardAreCountedOpenedClosedAndFailed() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let local = try lab.forward()
        // No probes: they are connections too, and would count.
        let config = SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec])
            .replacingOccurrences(of: "probe_interval = 1\n", with: "probe_interval = 0\n")
        let metricsFile = lab.directory.appending("warren.prom")
        let warren = try lab.startSupervisor(config: config, arguments: ["--metrics-file", metricsFile])
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "up", warren)
        let forward = "L \(local.spec)"

        let clients = try (0..<2).map { _ in try TCPClient.connect(port: local.port) }
        let open = warren.waitFor("db") { $0.connections?.first?.open == 2 }
        try require(open?.connections == [ForwardConnections(forward: forward, total: 2, open: 2, failed: 0)], "two open", warren)
        let table = try await CommandRunner.warren(["status", "--state-dir", warren.stateDir])
        #expect(table.stdout.contains("CONNS") && table.stdout.contains(" 2/2 "), "\(table.stdout)")

        for fd in clients { close(fd) }
        let closed = warren.waitFor("db") { $0.connections?.first?.open == 0 }
        try require(closed?.connections?.first?.total == 2, "both closed, two in all", warren)

        lab.target.stop()
        _ = try? TCPClient.echo(port: local.port)
        let failed = warren.waitFor("db") { $0.connections?.first?.failed == 1 }
        try require(failed?.connections?.first?.total == 3, "a refused channel counts as a connection and a failure", warren)

        #expect(waitUntil(timeout: .seconds(5)) {
            let text = (try? String(contentsOfFile: metricsFile, encoding: .utf8)) ?? ""
            return text.contains("warren_tunnel_channel_open_failures_total{tunnel=\"db\",forward=\"\(forward)\"} 1")
        })
        let metrics = try PrometheusExposition.parse(try String(contentsOfFile: metricsFile, encoding: .utf8))
        #expect(metrics.value("warren_tunnel_connections_total", ["tunnel": "db", "forward": forward]) == 3)
        #expect(metrics.value("warren_tunnel_connections_open", ["tunnel": "db", "forward": forward]) == 0)
    }
}

/// `warren retry`: after the bastion is fixed, the tunnel starts now, not in five minutes.
@Suite(.serialized) struct RetryTests {
    @Test func retryStartsAFailedTunnelAtOnceAfterTheFix() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let local = try lab.forward()
        let newKey = lab.directory.appending("new_key")
        let publicKey = try SSHKeygen.generate(at: newKey)
        let config = SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec])
            .replacingOccurrences(of: "identity_file = \"\(lab.sshd.clientKeyPath)\"", with: "identity_file = \"\(newKey)\"")
        let warren = try lab.startSupervisor(config: config)
        defer { warren.stop() }
        let failed = warren.waitFor("db") { $0.state == .failed }
        try require(failed?.lastError?.kind == .authFailed, "failed: the bastion does not know the key yet", warren)

        let none = try await CommandRunner.warren(["retry", "nosuch", "--config", warren.configPath, "--state-dir", warren.stateDir])
        #expect(none.status == 1 && none.stderr.contains("no tunnel named \"nosuch\""), "\(none)")

        // The bastion's admin adds the key.
        let handle = try #require(FileHandle(forWritingAtPath: lab.sshd.authorizedKeysPath))
        handle.seekToEndOfFile()
        handle.write(Data((publicKey + "\n").utf8))
        try handle.close()

        let retry = try await CommandRunner.warren(["retry", "db", "--config", warren.configPath, "--state-dir", warren.stateDir])
        #expect(retry.status == 0, "\(retry)")
        #expect(retry.stdout.contains("db: up"), "\(retry.stdout)")
        #expect(try TCPClient.echo(port: local.port))
        #expect(warren.logText().contains("retry requested for db"))
    }

    @Test func retryWithoutASupervisorSaysSo() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let local = try lab.forward()
        let path = try lab.directory.write(SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec]), to: "warren.toml")
        let result = try await CommandRunner.warren(["retry", "--config", path, "--state-dir", lab.stateDir])
        #expect(result.status == 3)
        #expect(result.stderr.contains("no supervisor runs"))
    }
}
