import Foundation
import Testing
import WarrenTestSupport

/// Prometheus's own linter on what a running warren serves: `promtool check
/// metrics` (Debian's prometheus package; .ci/run installs it). Without
/// promtool the test fails: it never skips.
@Suite(.serialized)
struct PromtoolTests {
    static func promtool() throws -> String {
        let candidates = ((ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/promtool" }) + ["/usr/bin/promtool"]
        return try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0) },
                            "promtool is not installed: apt-get install prometheus (it ships promtool)")
    }

    @Test func promtoolAcceptsWhatARunningWarrenServes() async throws {
        let promtool = try Self.promtool()
        let lab = try Lab.conditions([.ok, .deg, .refused])
        defer { lab.stop() }
        let port = try FreePort.find()
        try lab.startSupervisor(arguments: ["--metrics-listen", "127.0.0.1:\(port)"])
        // Every kind of series has a value: up, degraded, a restart counted, a connect time.
        let settled = lab.waitForStatus([
            .ok: { $0.state == .up },
            .deg: { $0.state == .degraded },
            .refused: { $0.restarts >= 1 },
        ])
        try #require(settled, "\(String(describing: lab.statusReport()))\n\(lab.supervisorLog())")
        let response = try HTTPClient.request(port: port, path: "/metrics")
        try #require(response.status == 200, "\(response)")
        #expect(response.body.contains("warren_tunnel_connect_duration_seconds_bucket{tunnel=\"ok\""))
        let file = lab.directory.appending("scrape.prom")
        try response.body.write(toFile: file, atomically: true, encoding: .utf8)

        let checked = try await CommandRunner.run("/bin/sh", ["-c", "exec \"$0\" check metrics < \"$1\"", promtool, file])
        #expect(checked.status == 0 && checked.stdout.isEmpty && checked.stderr.isEmpty, "promtool check metrics on a real scrape: \(checked)")

        // The linter does find faults: a counter without _total, a family without HELP.
        let broken = lab.directory.appending("broken.prom")
        try "# TYPE warren_restarts counter\nwarren_restarts 1\n".write(toFile: broken, atomically: true, encoding: .utf8)
        let refused = try await CommandRunner.run("/bin/sh", ["-c", "exec \"$0\" check metrics < \"$1\"", promtool, broken])
        #expect(refused.status != 0, "\(refused)")
        #expect(lab.stopSupervisor() == 0, "\(lab.supervisorLog())")
    }
}
