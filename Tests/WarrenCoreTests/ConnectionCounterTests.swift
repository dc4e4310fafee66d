import Foundation
import Testing
import WarrenCore

/// Connection counts from a recorded run (Fixtures/stderr/connections.txt):
/// `-L 2297` to a live target, `-L 2296` to a dead one, `-D 2294`, `-R 2293`;
/// one connection through each forward but the dynamic one, each closed.
@Suite struct ConnectionCounterTests {
    static func tunnel() throws -> TunnelConfig {
        TunnelConfig(
            name: "c", endpoint: SSHEndpoint(host: "127.0.0.1", identityFile: "/k"),
            localForwards: [try Forward.parse("127.0.0.1:2297:127.0.0.1:2298", kind: .local).get(), try Forward.parse("127.0.0.1:2296:127.0.0.1:2295", kind: .local).get()],
            remoteForwards: [try Forward.parse("127.0.0.1:2293:127.0.0.1:2298", kind: .remote).get()],
            dynamicForwards: [try Forward.parse("127.0.0.1:2294", kind: .dynamic).get()])
    }

    @Test func aRecordedRunIsCountedPerForward() throws {
        var counter = ConnectionCounter(tunnel: try Self.tunnel())
        let events = try Fixture.load("connections").events()
        var openSeen = 0
        for event in events {
            counter.record(event)
            openSeen = max(openSeen, counter.counts.reduce(0) { $0 + $1.open })
        }
        let byForward = Dictionary(uniqueKeysWithValues: counter.counts.map { ($0.forward, $0) })
        #expect(byForward["L 127.0.0.1:2297:127.0.0.1:2298"] == ForwardConnections(forward: "L 127.0.0.1:2297:127.0.0.1:2298", total: 1, open: 0, failed: 0))
        #expect(byForward["L 127.0.0.1:2296:127.0.0.1:2295"] == ForwardConnections(forward: "L 127.0.0.1:2296:127.0.0.1:2295", total: 1, open: 0, failed: 1))
        #expect(byForward["R 127.0.0.1:2293:127.0.0.1:2298"]?.total == 1)
        #expect(byForward["D 127.0.0.1:2294"]?.total == 0)
        #expect(openSeen == 1, "each connection was open until its channel was freed")
    }

    @Test func theEndOfARunClosesEveryConnectionAndKeepsTheTotals() throws {
        var counter = ConnectionCounter(tunnel: try Self.tunnel())
        for event: SSHEvent in [.forwardRequested(listenPort: 2297), .channelOpened(channel: 3), .forwardRequested(listenPort: 2294), .channelOpened(channel: 4)] {
            counter.record(event)
        }
        #expect(counter.counts.map(\.open) == [1, 0, 0, 1], "L 2297 and D 2294 (order: local, remote, dynamic)")
        counter.runEnded()
        #expect(counter.counts.map(\.open) == [0, 0, 0, 0])
        #expect(counter.counts.map(\.total) == [1, 0, 0, 1])
        counter.record(.channelClosed(channel: 3))
        #expect(counter.counts.map(\.open) == [0, 0, 0, 0], "a channel of the ended run is not counted again")
    }

    @Test func listenerChannelsAndUnknownPortsAreNotConnections() throws {
        var counter = ConnectionCounter(tunnel: try Self.tunnel())
        let classifier = StderrClassifier()
        for line in ["debug1: channel 0: new port-listener [port listener] (inactive timeout: 0)",
                     "debug1: channel 0: free: port listener, nchannels 3",
                     "debug1: Connection to port 9999 forwarding to x port 1 requested.",
                     "debug1: channel 5: new direct-tcpip [direct-tcpip] (inactive timeout: 0)"] {
            if let event = classifier.classify(line: line) { counter.record(event) }
        }
        #expect(counter.counts.allSatisfy { $0.total == 0 && $0.open == 0 })
    }

    /// A listener warren holds: its counts are warren's own, taken whole;
    /// `connections_total` is every client handed over, answered or refused.
    @Test func aHeldListenersCountsAreTakenWhole() throws {
        var counter = ConnectionCounter(tunnel: try Self.tunnel())
        var counts = ListenerCounts()
        counts.opened = 5
        counts.open = 2
        counts.failed = 1
        counts.waited = 3
        counts.dropped = 1
        counts.probes = 7
        counts.probeFailures = 2
        counter.take(1, counts)
        #expect(counter.counts[1] == ForwardConnections(
            forward: "L 127.0.0.1:2296:127.0.0.1:2295", total: 6, open: 2, failed: 1, waited: 3, dropped: 1, probes: 7, probeFailures: 2))
        counter.take(9, counts)
        #expect(counter.counts[0].total == 0, "an index out of range changes nothing")
    }

    /// status.json of an earlier warren has no waited/dropped/probe counts: they read as 0.
    @Test func countsOfAnOlderStatusFileStillDecode() throws {
        let old = #"{"forward":"L 15432","connections_total":3,"connections_open":1,"channel_open_failures_total":1}"#
        let decoded = try JSONDecoder().decode(ForwardConnections.self, from: Data(old.utf8))
        #expect(decoded == ForwardConnections(forward: "L 15432", total: 3, open: 1, failed: 1))
        let encoded = String(decoding: try JSONEncoder().encode(ForwardConnections(forward: "L 1", waited: 2, probes: 4)), as: UTF8.self)
        for key in ["connections_waited_total", "connections_dropped_total", "probes_total", "probe_failures_total"] {
            #expect(encoded.contains("\"\(key)\""), "\(key) in \(encoded)")
        }
    }
}
