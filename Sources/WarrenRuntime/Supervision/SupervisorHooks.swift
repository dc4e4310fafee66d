import WarrenCore

/// A point in a supervisor's life that the outside world is told about
/// (systemd's sd_notify, for one).
public enum SupervisorPhase: Sendable, Equatable {
    /// Every selected tunnel has settled (is up or degraded, or its first
    /// attempt failed), or the start timeout passed.
    case started(tunnels: Int)
    /// SIGHUP arrived; the config is being re-read.
    case reloading
    /// The reload is done, whether the new config was taken or refused.
    case reloaded
    /// SIGTERM or SIGINT arrived; the children are being stopped.
    case stopping
}

/// Observers of a supervisor, for metrics and service managers. Both are
/// called on the supervisor's actor, in order, and must return quickly.
public struct SupervisorHooks: Sendable {
    /// Every tunnel's status, each time one changes: that one as `changed`,
    /// or nil when the whole table was set (at start, after a reload, at the end).
    public var statusesChanged: @Sendable (_ statuses: [String: TunnelStatus], _ changed: TunnelStatus?) -> Void
    public var phaseChanged: @Sendable (SupervisorPhase) -> Void

    public init(
        statusesChanged: @escaping @Sendable ([String: TunnelStatus], TunnelStatus?) -> Void = { _, _ in },
        phaseChanged: @escaping @Sendable (SupervisorPhase) -> Void = { _ in }
    ) {
        self.statusesChanged = statusesChanged
        self.phaseChanged = phaseChanged
    }
}
