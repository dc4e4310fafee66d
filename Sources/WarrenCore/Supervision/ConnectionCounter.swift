/// Connections through one forward: from warren's own accepts for the
/// local forwards warren holds, from ssh's own log for the others.
public struct ForwardConnections: Sendable, Codable, Hashable {
    /// The forward as status lists it: `L 127.0.0.1:15432:db:5432`, `R 9090`, `D 1080`.
    public var forward: String
    /// Client connections handed to ssh through it since the supervisor
    /// started, answered or refused by the far side (probes not included).
    public var total: Int
    /// Client connections open now.
    public var open: Int
    /// Client connections whose channel the far side refused (target unreachable, forbidden).
    public var failed: Int
    /// Client connections that arrived while the tunnel's ssh was down and
    /// waited for the next one (held by warren, then handed over or dropped).
    public var waited: Int
    /// Client connections closed unserved: they waited longer than
    /// `connect_timeout`, or the tunnel gave up (a failure that needs a human).
    public var dropped: Int
    /// warren's own probes (channel opens with no client), and how many of them
    /// the far side refused: never counted as client connections.
    public var probes: Int
    public var probeFailures: Int

    public init(forward: String, total: Int = 0, open: Int = 0, failed: Int = 0, waited: Int = 0, dropped: Int = 0, probes: Int = 0, probeFailures: Int = 0) {
        self.forward = forward
        self.total = total
        self.open = open
        self.failed = failed
        self.waited = waited
        self.dropped = dropped
        self.probes = probes
        self.probeFailures = probeFailures
    }

    /// Takes the counts warren keeps for a listener it holds.
    public mutating func take(_ counts: ListenerCounts) {
        total = counts.opened + counts.failed
        open = counts.open
        failed = counts.failed
        waited = counts.waited
        dropped = counts.dropped
        probes = counts.probes
        probeFailures = counts.probeFailures
    }

    enum CodingKeys: String, CodingKey {
        case forward
        case total = "connections_total"
        case open = "connections_open"
        case failed = "channel_open_failures_total"
        case waited = "connections_waited_total"
        case dropped = "connections_dropped_total"
        case probes = "probes_total"
        case probeFailures = "probe_failures_total"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            forward: try c.decode(String.self, forKey: .forward), total: try c.decode(Int.self, forKey: .total),
            open: try c.decode(Int.self, forKey: .open), failed: try c.decode(Int.self, forKey: .failed),
            // Absent in status files written before warren held the listeners.
            waited: try c.decodeIfPresent(Int.self, forKey: .waited) ?? 0, dropped: try c.decodeIfPresent(Int.self, forKey: .dropped) ?? 0,
            probes: try c.decodeIfPresent(Int.self, forKey: .probes) ?? 0, probeFailures: try c.decodeIfPresent(Int.self, forKey: .probeFailures) ?? 0)
    }
}

/// What warren counts at a listener it holds, from its own accepts.
public struct ListenerCounts: Sendable, Hashable {
    /// Channels the far side opened for a client (refused ones are `failed`).
    public var opened = 0
    public var open = 0
    public var failed = 0
    public var waited = 0
    public var dropped = 0
    public var probes = 0
    public var probeFailures = 0
    public init() {}
}

/// Counts the connections through each forward of a tunnel from what ssh
/// logs at `-v`: a request names the forward's listening port, the channel
/// opened next is that connection's, and its `free` line closes it. People
/// size connection pools and find leaks with these.
public struct ConnectionCounter: Sendable {
    public private(set) var counts: [ForwardConnections]
    /// (kind, listening port) of each forward, in the order of `counts`.
    private let listeners: [(remote: Bool, port: Int?)]
    private var pending: Int?
    private var channels: [Int: Int] = [:]

    public init(tunnel: TunnelConfig) {
        // The order of `TunnelStatus.describe`.
        let forwards = tunnel.forwards
        counts = zip(forwards, TunnelStatus.describe(tunnel)).map { ForwardConnections(forward: $0.1) }
        listeners = forwards.map { forward in
            guard case .tcp(_, let port) = forward.listen else { return (forward.kind == .remote, nil) }
            return (forward.kind == .remote, port)
        }
    }

    /// Takes in one event of ssh's log; returns whether a connection through
    /// a forward opened or ended.
    @discardableResult
    public mutating func record(_ event: SSHEvent) -> Bool {
        let before = counts
        switch event {
        case .forwardRequested(let port):
            pending = listeners.firstIndex { !$0.remote && $0.port == port }
        case .remoteForwardRequested(let port):
            pending = listeners.firstIndex { $0.remote && $0.port == port }
        case .channelOpened(let channel):
            guard let index = pending else { return false }
            pending = nil
            channels[channel] = index
            counts[index].total += 1
            counts[index].open += 1
        case .channelClosed(let channel):
            guard let index = channels.removeValue(forKey: channel) else { return false }
            counts[index].open = max(0, counts[index].open - 1)
        case .channelOpenFailed(let message), .failure(.forwardingForbidden, let message):
            guard let channel = StderrClassifier.channelNumber(ofOpenFailure: message), let index = channels[channel] else { return false }
            counts[index].failed += 1
        default:
            break
        }
        return counts.map(\.total) != before.map(\.total) || counts.map(\.open) != before.map(\.open)
    }

    /// The counts warren keeps for the listener of forward `index`. Returns
    /// whether a client connection or a probe opened or ended since the last counts.
    @discardableResult
    public mutating func take(_ index: Int, _ listener: ListenerCounts) -> Bool {
        guard counts.indices.contains(index) else { return false }
        let before = counts[index]
        counts[index].take(listener)
        // A probe is a channel too: the far side's idle timer counts it.
        return before.total != counts[index].total || before.open != counts[index].open || before.probes != counts[index].probes
    }

    /// ssh ended: every connection through it ended too.
    public mutating func runEnded() {
        pending = nil
        channels.removeAll()
        for index in counts.indices { counts[index].open = 0 }
    }
}
