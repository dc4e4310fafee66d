/// A bastion (or a NAT) that closes idle connections after a fixed span:
/// recognised from the pattern (`IdleCloses`), reconnected at once, shown as
/// `up` throughout, and not a failure.
extension TunnelMachine {
    /// Whether this end of a run is the remote closing an idle connection
    /// again after the span it closed the last one (see `IdleCloses`).
    mutating func isIdleClose(_ exit: ChildExit, at now: Double) -> Bool {
        guard let upSince, !stopping, !killedAtDeadline else { return false }
        // Closed by the remote: ssh's own exit status, no signal, nothing said but the close.
        guard exit == .process(exitCode: 255, signal: nil), diagnosis(of: exit).kind == .connectionLost,
            connections.counts.allSatisfy({ $0.open == 0 })
        else {
            idleCloses.interrupted()
            return false
        }
        return idleCloses.observe(idleFor: now - (lastActivity ?? upSince))
    }

    /// An idle close: not a failure. The next run starts at once and the
    /// tunnel is shown as `up` until it is up again or fails.
    mutating func reconnectQuietly(at now: Double) -> [TunnelAction] {
        let actions = endRun()
        upSince = nil
        streak = BackoffPolicy.Streak()
        quietReconnect = true
        return actions + startAgain(at: now)
    }
}
