/// When a supervisor is ready, in systemd's sense: every selected tunnel has
/// settled (it is up or degraded, or its first attempt failed), so that a unit
/// ordered after warren finds its tunnel up; or the start timeout passed.
/// Told once.
public struct StartReadiness: Sendable {
    public private(set) var unsettled: Set<String>
    public private(set) var announced = false

    public init(tunnels: Set<String>) {
        unsettled = tunnels
    }

    /// Records a tunnel's status; true when that was the last one to settle.
    public mutating func settle(_ status: TunnelStatus) -> Bool {
        guard unsettled.contains(status.name), status.state != .starting, status.state != .connecting else { return false }
        unsettled.remove(status.name)
        return unsettled.isEmpty
    }

    /// Whether to announce now (once: when all settled, or on the timeout).
    public mutating func announce(timedOut: Bool) -> Bool {
        guard !announced, timedOut || unsettled.isEmpty else { return false }
        announced = true
        return true
    }
}
