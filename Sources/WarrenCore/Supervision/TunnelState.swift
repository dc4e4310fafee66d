/// Where a tunnel is in its life. The raw values are public interface
/// (status.json, `warren status`, metrics).
public enum TunnelState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Waiting for a start slot (starts are throttled) or about to spawn ssh.
    case starting
    /// ssh is running but not every forward is ready yet.
    case connecting
    /// Every forward is bound (and remote forwards confirmed); targets answer.
    case up
    /// Connected, but a target does not answer through its forward.
    case degraded
    /// ssh exited; waiting to retry.
    case backoff
    /// ssh exited for a reason only a human can fix; retrying slowly.
    case failed
    /// Not running: disabled, removed or the supervisor is stopping.
    case stopped
    /// Not run here because other shards run it (`warren run --shard I/N`):
    /// `shards` in its status says which. Not a fault.
    case otherShard = "other_shard"

    /// Whether an ssh child is expected to be running in this state.
    public var hasChild: Bool { self == .connecting || self == .up || self == .degraded }
}

/// The last failure of a tunnel, as shown in status and logs.
public struct TunnelError: Sendable, Hashable, Codable {
    public var kind: FailureKind
    /// ssh's own line (or warren's probe result).
    public var message: String
    /// What to do about it.
    public var hint: String

    /// The hint with placeholders (`TUNNEL`, `HOST`): for callers that have no tunnel at hand.
    public init(kind: FailureKind, message: String) {
        self.kind = kind
        self.message = message
        self.hint = kind.hint
    }

    /// The hint with the real values: the tunnel, the failing host (found in
    /// `message`: a jump hop is named as such), its user, ports and targets.
    public init(kind: FailureKind, message: String, tunnel: TunnelConfig, defaultUser: String) {
        self.kind = kind
        self.message = message
        self.hint = kind.hint(in: HintContext(tunnel: tunnel, message: message, defaultUser: defaultUser))
    }
}
