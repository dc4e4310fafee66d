import Foundation
import Testing
import WarrenCore

/// deploy/grafana/warren.json asks only for metrics warren exports.
@Suite struct DashboardTests {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("deploy/grafana/warren.json").path

    /// Every `expr` and variable query in the dashboard.
    static func queries() throws -> [String] {
        let data = try #require(FileManager.default.contents(atPath: path), "no dashboard at \(path)")
        var found: [String] = []
        func walk(_ value: Any) {
            if let object = value as? [String: Any] {
                for (key, inner) in object {
                    if (key == "expr" || key == "query" || key == "definition"), let text = inner as? String { found.append(text) }
                    walk(inner)
                }
            } else if let array = value as? [Any] {
                array.forEach(walk)
            }
        }
        walk(try JSONSerialization.jsonObject(with: data))
        return found
    }

    /// The families warren renders when every kind of series has a value.
    static func exported() -> Set<String> {
        var metrics = TunnelMetrics(startedAt: 1)
        var status = TunnelStatus(name: "db", state: .connecting, since: "t", pid: 1, restarts: 0, forwards: ["L 1:h:2"], lastError: nil, nextRetry: nil)
        status.connections = [ForwardConnections(forward: "L 1:h:2", total: 1, open: 1, failed: 0)]
        metrics.observe(["db": status], wallClock: 1, monotonic: 1)
        status.state = .up
        metrics.observe(["db": status], wallClock: 2, monotonic: 2)
        var names: Set<String> = []
        for line in metrics.render().split(separator: "\n") where line.hasPrefix("# TYPE ") {
            names.insert(String(line.split(separator: " ")[2]))
        }
        return names
    }

    @Test func everyQueryNamesAMetricWarrenExports() throws {
        let queries = try Self.queries()
        #expect(queries.count >= 8)
        let exported = Self.exported()
        let pattern = try Regex("warren_[a-z_]+")
        var used: Set<String> = []
        for query in queries {
            for match in query.matches(of: pattern) {
                var name = String(query[match.range])
                for suffix in ["_bucket", "_sum", "_count"] where !exported.contains(name) && name.hasSuffix(suffix) {
                    name = String(name.dropLast(suffix.count))
                }
                used.insert(name)
                #expect(exported.contains(name), "\(name) in \(query) is not exported; warren exports \(exported.sorted())")
            }
        }
        for wanted in ["warren_tunnel_state", "warren_tunnel_restarts_total", "warren_tunnel_connect_duration_seconds", "warren_tunnel_connections_open"] {
            #expect(used.contains(wanted), "the dashboard shows \(wanted)")
        }
    }
}
