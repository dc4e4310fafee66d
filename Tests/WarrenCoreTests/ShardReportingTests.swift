import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// What a sharded supervisor's metrics, status and checks say about shards.
struct ShardReportingTests {
    static func status(_ name: String, _ state: TunnelState, shards: [Int]? = nil) -> TunnelStatus {
        var status = TunnelStatus(name: name, state: state, since: "t", pid: nil, restarts: 0, forwards: [], lastError: nil, nextRetry: nil)
        status.shards = shards
        return status
    }

    @Test func metricsSayWhichShardThisIs() throws {
        var metrics = TunnelMetrics(startedAt: 1_000, shard: ShardSpec(index: 1, count: 3))
        metrics.observe(["a": Self.status("a", .up), "b": Self.status("b", .otherShard, shards: [0, 2])], wallClock: 1_001, monotonic: 1)
        let text = try PrometheusExposition.parse(metrics.render())
        #expect(text.value("warren_shard_info", ["shard": "1", "shards": "3"]) == 1)
        #expect(text.value("warren_tunnel_state", ["tunnel": "b", "state": "other_shard"]) == 1)
        #expect(text.value("warren_tunnel_up", ["tunnel": "b"]) == 0)
        let unsharded = try PrometheusExposition.parse(TunnelMetrics(startedAt: 1_000).render())
        #expect(unsharded.value("warren_shard_info", ["shard": "0", "shards": "1"]) == nil)
    }

    @Test func checkNamesAnotherShardsTunnelAsSuch() throws {
        let config = try shardConfig(["db"])
        let check = CheckAssessment.assess(config.tunnels[0], status: Self.status("db", .otherShard, shards: [2, 0]), probes: [:])
        #expect(check.state == .down && check.kind == .notSupervised)
        #expect(check.message == "another shard's: shard 2, 0 runs it; check it there")
    }

    @Test func statusJSONStaysReadableBothWays() throws {
        // A status.json from before shards decodes, and the new fields are absent without --shard.
        let old = #"{"version":1,"supervisor_pid":7,"config_file":"w.toml","started_at":"t","updated_at":"t","running":true,"tunnels":[{"name":"a","state":"up","since":"t","restarts":0,"forwards":[]}]}"#
        let report = try JSONDecoder().decode(StatusReport.self, from: Data(old.utf8))
        #expect(report.shard == nil && report.forwardBind == nil && report.tunnels[0].shards == nil)
        var sharded = report
        sharded.shard = ShardSpec(index: 1, count: 3)
        sharded.forwardBind = "0.0.0.0"
        sharded.tunnels.append(Self.status("b", .otherShard, shards: [0, 2]))
        let text = String(decoding: try JSONEncoder().encode(sharded), as: UTF8.self)
        #expect(text.contains(#""shard":{"count":3,"index":1}"#) || text.contains(#""shard":{"index":1,"count":3}"#), "\(text)")
        #expect(text.contains(#""forward_bind":"0.0.0.0""#) && text.contains(#""state":"other_shard""#) && text.contains(#""shards":[0,2]"#))
        #expect(!String(decoding: try JSONEncoder().encode(report), as: UTF8.self).contains("shard"))
    }
}
