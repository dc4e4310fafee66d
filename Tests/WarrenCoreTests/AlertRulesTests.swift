import Foundation
import Testing
import WarrenCore

/// deploy/prometheus/warren-rules.yml alerts only on metrics warren exports
/// (its behaviour is tested by promtool: warren-rules.test.yml, in make validate-deploy).
@Suite struct AlertRulesTests {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("deploy/prometheus/warren-rules.yml").path

    @Test func everyRuleNamesAMetricWarrenExports() throws {
        let text = try String(contentsOfFile: Self.path, encoding: .utf8)
        let expressions = text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") && !$0.contains("description:") && !$0.contains("summary:") }
            .joined(separator: "\n")
        let exported = DashboardTests.exported()
        var used: Set<String> = []
        for match in expressions.matches(of: try Regex("warren_[a-z_]+")) {
            let name = String(expressions[match.range])
            used.insert(name)
            #expect(exported.contains(name), "\(name) in the rules is not exported; warren exports \(exported.sorted())")
        }
        for wanted in ["warren_tunnel_state", "warren_tunnel_restarts_total", "warren_tunnel_certificate_expiry_timestamp_seconds", "warren_supervisor_start_time_seconds"] {
            #expect(used.contains(wanted), "the rules alert on \(wanted)")
        }
    }
}
