/// When a run is ready, from what ssh logged: every local and dynamic forward
/// is bound once the last ssh of the chain says `Entering interactive session.`
/// (with `ExitOnForwardFailure yes`): one line per jump hop, whose ssh logs to
/// the same place, plus the bastion's. Remote forwards also need the server's
/// `forwarding_success` reply.
struct Readiness: Sendable {
    let sessionsNeeded: Int
    let needsRemoteConfirmation: Bool
    private(set) var sessionsSeen = 0
    private(set) var remoteConfirmed = false

    init(tunnel: TunnelConfig) {
        sessionsNeeded = tunnel.jumps.count + 1
        needsRemoteConfirmation = !tunnel.remoteForwards.isEmpty
    }

    mutating func reset() {
        sessionsSeen = 0
        remoteConfirmed = false
    }

    mutating func record(_ event: SSHEvent) {
        switch event {
        case .enteredSession: sessionsSeen += 1
        case .remoteForwardsConfirmed: remoteConfirmed = true
        default: break
        }
    }

    var isReady: Bool { sessionsSeen >= sessionsNeeded && (remoteConfirmed || !needsRemoteConfirmation) }
}
