/// What the supervisor's metrics say, kept from the stream of status changes it
/// publishes. Pure: every observation comes with the wall-clock time (Unix
/// seconds) and a monotonic time (seconds) from the caller.
///
/// Derived from successive statuses of a tunnel:
/// - a restart is a run that ended: connecting, up or degraded, then backoff or
///   failed; it is counted under the failure kind that ended it;
/// - time to connect is from entering `connecting` (ssh spawned) to `up`.
public struct TunnelMetrics: Sendable {
    /// Upper bounds of the connect-time histogram, seconds.
    public static let connectBuckets: [Double] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

    struct Tunnel: Sendable {
        var state: TunnelState
        /// Wall clock of the last state change.
        var changedAt: Double
        /// Monotonic time ssh was spawned, while connecting.
        var connectingSince: Double?
        var lastConnectSeconds: Double?
        /// Cumulative counts per bucket of `connectBuckets`, then the sum and count.
        var connectBucketCounts = [Int](repeating: 0, count: TunnelMetrics.connectBuckets.count)
        var connectSum = 0.0
        var connectCount = 0
        var restarts: [FailureKind: Int] = [:]
        var connections: [ForwardConnections] = []
        var hostKeyChecked = true
        /// Idle closes by the other side, from the status (not restarts by failure).
        var idleCloses = 0
        var idleCloseSeconds: Int?
        /// The last run of certificate_command: when (Unix time) and whether it worked.
        var renewal: (at: Double, ok: Bool)?
    }

    private(set) var tunnels: [String: Tunnel] = [:]
    public let startedAt: Double
    /// `--shard I/N`, reported as `warren_shard_info`.
    public let shard: ShardSpec?

    public init(startedAt: Double, shard: ShardSpec? = nil) {
        self.startedAt = startedAt
        self.shard = shard
    }

    /// Takes in the statuses of every tunnel after a change. Tunnels that are
    /// no longer there (removed on reload) are dropped.
    public mutating func observe(_ statuses: [String: TunnelStatus], wallClock: Double, monotonic: Double) {
        for name in tunnels.keys where statuses[name] == nil { tunnels[name] = nil }
        for status in statuses.values { observe(status, wallClock: wallClock, monotonic: monotonic) }
    }

    /// Takes in one tunnel's new status (the others are unchanged).
    public mutating func observe(_ status: TunnelStatus, wallClock: Double, monotonic: Double) {
        let name = status.name
        guard var tunnel = tunnels[name] else {
            tunnels[name] = Tunnel(
                state: status.state, changedAt: wallClock, connectingSince: status.state == .connecting ? monotonic : nil,
                connections: status.connections ?? [], hostKeyChecked: status.hostKeyChecked ?? true,
                renewal: status.credentials?.certificate?.lastRenewal.map { ($0.atUnix, $0.ok) })
            observeCertificate(status)
            return
        }
        tunnel.connections = status.connections ?? tunnel.connections
        tunnel.hostKeyChecked = status.hostKeyChecked ?? true
        observeCertificate(status)
        if let last = status.credentials?.certificate?.lastRenewal { tunnel.renewal = (last.atUnix, last.ok) }
        tunnel.idleCloses = status.idleClose?.closes ?? tunnel.idleCloses
        tunnel.idleCloseSeconds = status.idleClose?.afterSeconds ?? tunnel.idleCloseSeconds
        let previous = tunnel.state
        if previous != status.state {
            tunnel.state = status.state
            tunnel.changedAt = wallClock
            if status.state == .connecting { tunnel.connectingSince = monotonic }
            if status.state == .up, previous == .connecting, let since = tunnel.connectingSince {
                tunnel.recordConnect(seconds: max(0, monotonic - since))
            }
            if status.state != .connecting { tunnel.connectingSince = nil }
            // A run ended: restarted at once (starting) or after a wait.
            if previous.hasChild, status.state == .starting || status.state == .backoff || status.state == .failed {
                tunnel.restarts[status.lastError?.kind ?? .unknown, default: 0] += 1
            }
        }
        tunnels[name] = tunnel
    }

    /// Expiry (Unix time) of each tunnel's user certificate, read by the runtime
    /// at start and on every reload.
    public var certificateExpiry: [String: Double] = [:]

    /// A renewed certificate's expiry replaces the one read at start.
    private mutating func observeCertificate(_ status: TunnelStatus) {
        guard let before = status.credentials?.certificate?.validBeforeUnix else { return }
        certificateExpiry[status.name] = before
    }

    /// Every tunnel is now stopped (the supervisor is exiting).
    public mutating func stopAll(wallClock: Double) {
        for (name, tunnel) in tunnels where tunnel.state != .stopped {
            tunnels[name]!.state = .stopped
            tunnels[name]!.changedAt = wallClock
            tunnels[name]!.connectingSince = nil
        }
    }

    /// The metrics in the Prometheus text format.
    public func render() -> String {
        var out = PrometheusText()
        let names = tunnels.keys.sorted()
        out.family("warren_tunnel_up", .gauge, help: "1 when the tunnel is up (every forward ready, targets answering), else 0.")
        for name in names {
            out.sample("warren_tunnel_up", [("tunnel", name)], tunnels[name]!.state == .up ? 1 : 0)
        }
        out.family("warren_tunnel_state", .gauge, help: "The tunnel's state: 1 for the state it is in, 0 for the others.")
        for name in names {
            for state in TunnelState.allCases {
                out.sample("warren_tunnel_state", [("tunnel", name), ("state", state.rawValue)], tunnels[name]!.state == state ? 1 : 0)
            }
        }
        out.family("warren_tunnel_restarts_total", .counter, help: "ssh runs that ended and were scheduled for a restart, by the failure kind that ended them.")
        for name in names {
            for kind in FailureKind.allCases {
                out.sample("warren_tunnel_restarts_total", [("tunnel", name), ("kind", kind.rawValue)], Double(tunnels[name]!.restarts[kind] ?? 0))
            }
        }
        out.family("warren_tunnel_idle_closes_total", .counter, help: "Times the other side closed the idle connection after its fixed idle span; reconnected at once, not counted in restarts_total.")
        for name in names {
            out.sample("warren_tunnel_idle_closes_total", [("tunnel", name)], Double(tunnels[name]!.idleCloses))
        }
        out.family("warren_tunnel_idle_close_seconds", .gauge, help: "The idle span after which the other side closes the tunnel's connection, once recognised.")
        for name in names {
            if let seconds = tunnels[name]!.idleCloseSeconds {
                out.sample("warren_tunnel_idle_close_seconds", [("tunnel", name)], Double(seconds))
            }
        }
        out.family("warren_tunnel_connect_seconds", .gauge, help: "Time from spawning ssh to every forward ready, for the last connection that came up.")
        for name in names {
            if let seconds = tunnels[name]!.lastConnectSeconds {
                out.sample("warren_tunnel_connect_seconds", [("tunnel", name)], seconds)
            }
        }
        out.family("warren_tunnel_connect_duration_seconds", .histogram, help: "Time from spawning ssh to every forward ready, for every connection that came up.")
        for name in names {
            let tunnel = tunnels[name]!
            for (index, bound) in Self.connectBuckets.enumerated() {
                out.sample("warren_tunnel_connect_duration_seconds_bucket", [("tunnel", name), ("le", PrometheusText.format(bound))], Double(tunnel.connectBucketCounts[index]))
            }
            out.sample("warren_tunnel_connect_duration_seconds_bucket", [("tunnel", name), ("le", "+Inf")], Double(tunnel.connectCount))
            out.sample("warren_tunnel_connect_duration_seconds_sum", [("tunnel", name)], tunnel.connectSum)
            out.sample("warren_tunnel_connect_duration_seconds_count", [("tunnel", name)], Double(tunnel.connectCount))
        }
        connectionFamilies(into: &out, names: names)
        out.family("warren_tunnel_last_state_change_timestamp_seconds", .gauge, help: "When the tunnel last changed state (Unix time).")
        for name in names {
            out.sample("warren_tunnel_last_state_change_timestamp_seconds", [("tunnel", name)], tunnels[name]!.changedAt)
        }
        out.family("warren_tunnel_host_key_checked", .gauge, help: "0 when a hop's host key is not checked (host_key_policy = \"insecure-no-check\"), else 1.")
        for name in names {
            out.sample("warren_tunnel_host_key_checked", [("tunnel", name)], tunnels[name]!.hostKeyChecked ? 1 : 0)
        }
        out.family("warren_tunnel_certificate_expiry_timestamp_seconds", .gauge, help: "When the tunnel's user certificate (certificate_file) expires (Unix time); absent without one or when it never expires.")
        for name in certificateExpiry.keys.sorted() {
            out.sample("warren_tunnel_certificate_expiry_timestamp_seconds", [("tunnel", name)], certificateExpiry[name]!)
        }
        out.family("warren_tunnel_certificate_renewal_success", .gauge, help: "1 when the last run of the tunnel's certificate_command gave a certificate warren installed, 0 when it failed (the last good certificate is kept).")
        for name in names {
            if let renewal = tunnels[name]!.renewal {
                out.sample("warren_tunnel_certificate_renewal_success", [("tunnel", name)], renewal.ok ? 1 : 0)
            }
        }
        out.family("warren_tunnel_certificate_renewal_timestamp_seconds", .gauge, help: "When the tunnel's certificate_command last ran (Unix time).")
        for name in names {
            if let renewal = tunnels[name]!.renewal {
                out.sample("warren_tunnel_certificate_renewal_timestamp_seconds", [("tunnel", name)], renewal.at)
            }
        }
        out.family("warren_supervisor_start_time_seconds", .gauge, help: "When this warren run started (Unix time).")
        out.sample("warren_supervisor_start_time_seconds", [], startedAt)
        if let shard {
            out.family("warren_shard_info", .gauge, help: "Which shard this supervisor is (--shard I/N): always 1.")
            out.sample("warren_shard_info", [("shard", "\(shard.index)"), ("shards", "\(shard.count)")], 1)
        }
        return out.text
    }
}

extension TunnelMetrics {
    /// Connections through each forward: from warren's own accepts for the
    /// local forwards it holds, from ssh's log for the others.
    func connectionFamilies(into out: inout PrometheusText, names: [String]) {
        let families: [(String, PrometheusText.MetricType, String, KeyPath<ForwardConnections, Int>)] = [
            ("warren_tunnel_connections_total", .counter, "Client connections opened through the forward since the supervisor started (probes not included).", \.total),
            ("warren_tunnel_connections_open", .gauge, "Client connections open through the forward now.", \.open),
            ("warren_tunnel_channel_open_failures_total", .counter, "Client connections through the forward whose channel the far side refused.", \.failed),
            ("warren_tunnel_connections_waited_total", .counter, "Client connections that arrived while the tunnel's ssh was down and waited for it (local forwards warren holds).", \.waited),
            ("warren_tunnel_connections_dropped_total", .counter, "Client connections closed unserved: they waited past connect_timeout, or the tunnel gave up.", \.dropped),
            ("warren_tunnel_probes_total", .counter, "warren's own probes of the forward's target (channel opens with no client).", \.probes),
            ("warren_tunnel_probe_failures_total", .counter, "Probes whose channel the far side refused.", \.probeFailures),
        ]
        for (family, kind, help, value) in families {
            out.family(family, kind, help: help)
            for name in names {
                for forward in tunnels[name]!.connections {
                    out.sample(family, [("tunnel", name), ("forward", forward.forward)], Double(forward[keyPath: value]))
                }
            }
        }
    }
}

extension TunnelMetrics.Tunnel {
    mutating func recordConnect(seconds: Double) {
        lastConnectSeconds = seconds
        connectSum += seconds
        connectCount += 1
        for (index, bound) in TunnelMetrics.connectBuckets.enumerated() where seconds <= bound {
            connectBucketCounts[index] += 1
        }
    }
}
