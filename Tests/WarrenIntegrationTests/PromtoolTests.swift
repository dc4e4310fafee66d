import Foundation
import Testing
import WarrenTestSupport

/// Prometheus's own linter: `promtool check metrics` (Debian's prometheus
/// package; .ci/run installs it). MetricsTests runs it on what a running warren
/// serves. Without promtool the tests fail: they never skip.
@Suite struct PromtoolTests {
    static func promtool() throws -> String {
        let candidates = ((ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/promtool" }) + ["/usr/bin/promtool"]
        return try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0) },
                            "promtool is not installed: apt-get install prometheus (it ships promtool)")
    }

    /// `promtool check metrics < exposition`, the text written to a file in `directory`.
    static func checkMetrics(_ exposition: String, in directory: TemporaryDirectory) async throws -> CommandResult {
        let promtool = try promtool()
        let file = try directory.write(exposition, to: "exposition-\(UUID().uuidString).prom")
        return try await CommandRunner.run("/bin/sh", ["-c", "exec \"$0\" check metrics < \"$1\"", promtool, file])
    }

    /// The linter does find faults, so its silence on warren's scrape means something.
    @Test func promtoolRefusesABrokenExposition() async throws {
        try await withTemporaryDirectory(prefix: "pt-") { dir in
            let refused = try await Self.checkMetrics("# TYPE warren_restarts counter\nwarren_restarts 1\n", in: dir)
            #expect(refused.status != 0, "\(refused)")
            #expect(refused.stdout.contains("_total") || refused.stderr.contains("_total"), "\(refused)")
        }
    }
}
