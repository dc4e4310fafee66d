/// The content of `<state_dir>/status.json`: what the supervisor reports. Field
/// names are public interface (scripts and `warren check` read them).
public struct StatusReport: Sendable, Codable, Equatable {
    /// Bumped on incompatible changes.
    public var version: Int = 1
    public var supervisorPid: Int32
    public var configFile: String
    public var startedAt: String
    /// When the supervisor last wrote the file (RFC 3339, UTC).
    public var updatedAt: String
    /// false in the final status written on a clean stop.
    public var running: Bool
    /// Which shard this supervisor is (`--shard I/N`); absent when it runs every tunnel.
    public var shard: ShardSpec?
    /// `--forward-bind`: where its local and dynamic forwards listen instead of
    /// the config's address; absent when they listen where the config says.
    public var forwardBind: String?
    public var tunnels: [TunnelStatus]

    public init(supervisorPid: Int32, configFile: String, startedAt: String, updatedAt: String, running: Bool, shard: ShardSpec? = nil, forwardBind: String? = nil, tunnels: [TunnelStatus]) {
        self.shard = shard
        self.forwardBind = forwardBind
        self.supervisorPid = supervisorPid
        self.configFile = configFile
        self.startedAt = startedAt
        self.updatedAt = updatedAt
        self.running = running
        self.tunnels = tunnels
    }

    enum CodingKeys: String, CodingKey {
        case version
        case supervisorPid = "supervisor_pid"
        case configFile = "config_file"
        case startedAt = "started_at"
        case updatedAt = "updated_at"
        case running, shard, tunnels
        case forwardBind = "forward_bind"
    }
}

/// One tunnel in `status.json`.
public struct TunnelStatus: Sendable, Codable, Equatable {
    public var name: String
    public var state: TunnelState
    /// When it entered `state` (RFC 3339, UTC).
    public var since: String
    /// The ssh child's pid while one runs.
    public var pid: Int32?
    public var restarts: Int
    /// The forwards in ssh's syntax, e.g. `127.0.0.1:15432:db.internal:5432`, `R 9090`.
    public var forwards: [String]
    public var lastError: TunnelError?
    /// When the next retry is due, in backoff or failed (RFC 3339, UTC).
    public var nextRetry: String?
    /// Connections through each forward (absent in status files of older versions).
    public var connections: [ForwardConnections]?
    /// With `--shard`, for a tunnel this supervisor does not run: the shards
    /// that run it, best first. Absent otherwise.
    public var shards: [Int]?
    /// false when a hop's host key is not checked (`insecure-no-check`); nil
    /// in status files written before the field existed.
    public var hostKeyChecked: Bool?
    /// Set once the other side is seen closing idle connections after a fixed
    /// span (not a failure: see `IdleCloses`).
    public var idleClose: IdleCloseStatus?
    /// The key and certificate the tunnel logs in with (see `CredentialStatus`).
    public var credentials: CredentialStatus?

    public init(
        name: String, state: TunnelState, since: String, pid: Int32?, restarts: Int, forwards: [String], lastError: TunnelError?,
        nextRetry: String?, connections: [ForwardConnections]? = nil, hostKeyChecked: Bool? = nil,
        idleClose: IdleCloseStatus? = nil
    ) {
        self.name = name
        self.state = state
        self.since = since
        self.pid = pid
        self.restarts = restarts
        self.forwards = forwards
        self.lastError = lastError
        self.nextRetry = nextRetry
        self.connections = connections
        self.hostKeyChecked = hostKeyChecked
        self.idleClose = idleClose
    }

    enum CodingKeys: String, CodingKey {
        case name, state, since, pid, restarts, forwards, connections, shards
        case lastError = "last_error"
        case nextRetry = "next_retry"
        case hostKeyChecked = "host_key_checked"
        case idleClose = "idle_close"
        case credentials
    }

    /// How forwards are listed: `L 127.0.0.1:15432:db:5432`, `R 9090`, `D 1080`.
    public static func describe(_ tunnel: TunnelConfig) -> [String] {
        tunnel.localForwards.map { "L \($0)" } + tunnel.remoteForwards.map { "R \($0)" }
            + tunnel.dynamicForwards.map { "D \($0)" }
    }
}

/// `idle_close` in status.json: the other side closes idle connections.
public struct IdleCloseStatus: Sendable, Codable, Equatable {
    /// About how long a connection stays idle before it is closed, seconds.
    public var afterSeconds: Int
    /// Idle closes seen (reconnected at once, not counted as failures).
    public var closes: Int
    /// The sentence status and doctor print.
    public var note: String

    public init?(_ closes: IdleCloses) {
        guard let span = closes.span, let note = closes.description else { return nil }
        self.afterSeconds = Int(span.rounded())
        self.closes = closes.count + 1
        self.note = note
    }

    enum CodingKeys: String, CodingKey {
        case afterSeconds = "after_seconds"
        case closes, note
    }
}
