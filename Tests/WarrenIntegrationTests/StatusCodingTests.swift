import Foundation
import Testing
import WarrenCore
import WarrenRuntime

/// status.json is assembled from one kept entry per tunnel (only a changed
/// tunnel is encoded again): the text must be exactly what encoding the whole
/// report prints, whatever the entries hold.
@Suite struct StatusCodingTests {
    static func tunnel(_ name: String, _ state: TunnelState, error: String? = nil) -> TunnelStatus {
        var status = TunnelStatus(
            name: name, state: state, since: "2026-11-30T00:00:00Z", pid: state.hasChild ? 4242 : nil, restarts: 3,
            forwards: ["L 127.0.0.1:15432:db.internal:5432", "D 1080"],
            lastError: error.map { TunnelError(kind: .connectionLost, message: $0) }, nextRetry: nil,
            connections: [ForwardConnections(forward: "L 127.0.0.1:15432:db.internal:5432", total: 9, open: 1, failed: 2)],
            hostKeyChecked: true)
        status.shards = state == .otherShard ? [2, 0] : nil
        return status
    }

    @Test(arguments: [0, 1, 3])
    func theAssembledFileIsTheWholeReportEncoded(tunnels count: Int) {
        let hostile = "Connection closed\u{1b}]0;owned\u{7}\u{9b}2J\u{202e}\r\n\"tunnels\" : [\n\n  ] / \\ end"
        let all = [Self.tunnel("alpha", .up), Self.tunnel("beta", .backoff, error: hostile), Self.tunnel("gamma", .otherShard)]
        let report = StatusReport(
            supervisorPid: 7, configFile: "/etc/warren/warren.toml", startedAt: "2026-11-30T00:00:00Z",
            updatedAt: "2026-11-30T00:00:01Z", running: true, shard: nil, forwardBind: "0.0.0.0", tunnels: Array(all.prefix(count)))
        let assembled = StatusCoding.encode(report)
        #expect(assembled == JSONOutput.encode(report))
        #expect((try? StatusCoding.decode(Data(assembled.utf8))) == report)
    }
}
