/// Connections through one forward, counted from ssh's own log.
public struct ForwardConnections: Sendable, Codable, Hashable {
    /// The forward as status lists it: `L 127.0.0.1:15432:db:5432`, `R 9090`, `D 1080`.
    public var forward: String
    /// Connections opened through it since the supervisor started.
    public var total: Int
    /// Connections open now.
    public var open: Int
    /// Connections whose channel the far side refused (target unreachable, forbidden).
    public var failed: Int

    public init(forward: String, total: Int = 0, open: Int = 0, failed: Int = 0) {
        self.forward = forward
        self.total = total
        self.open = open
        self.failed = failed
    }

    enum CodingKeys: String, CodingKey {
        case forward
        case total = "connections_total"
        case open = "connections_open"
        case failed = "channel_open_failures_total"
    }
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

    /// Takes in one event of ssh's log.
    public mutating func record(_ event: SSHEvent) {
        switch event {
        case .forwardRequested(let port):
            pending = listeners.firstIndex { !$0.remote && $0.port == port }
        case .remoteForwardRequested(let port):
            pending = listeners.firstIndex { $0.remote && $0.port == port }
        case .channelOpened(let channel):
            guard let index = pending else { return }
            pending = nil
            channels[channel] = index
            counts[index].total += 1
            counts[index].open += 1
        case .channelClosed(let channel):
            guard let index = channels.removeValue(forKey: channel) else { return }
            counts[index].open = max(0, counts[index].open - 1)
        case .channelOpenFailed(let message), .failure(.forwardingForbidden, let message):
            guard let channel = StderrClassifier.channelNumber(ofOpenFailure: message), let index = channels[channel] else { return }
            counts[index].failed += 1
        default:
            break
        }
    }

    /// ssh ended: every connection through it ended too.
    public mutating func runEnded() {
        pending = nil
        channels.removeAll()
        for index in counts.indices { counts[index].open = 0 }
    }
}
