/// What happened to a tunnel, as the runtime reports it to the machine.
public enum TunnelEvent: Sendable, Equatable {
    /// The runtime got a start slot and spawned ssh with this pid.
    case spawned(pid: Int32)
    /// ssh printed a line that means something (see `StderrClassifier`).
    case ssh(SSHEvent)
    /// ssh exited; the diagnosis is taken from all it printed.
    case exited(ExitDiagnosis)
    /// ssh could not be started: its files could not be prepared (a host key
    /// fingerprint pin could not be resolved, a write failed) or exec failed.
    case startFailed(ExitDiagnosis)
    /// The retry delay elapsed.
    case retryDue
    /// ssh did not become ready in time.
    case readyDeadlinePassed
    /// A probe through the forwards found every target answering.
    case probeSucceeded
    /// A probe through a forward found its target unreachable.
    case probeFailed(message: String)
    /// Stop the tunnel (shutdown, removal from the config).
    case stop
}

/// What the runtime must do next.
public enum TunnelAction: Sendable, Equatable {
    /// Acquire a start slot, then spawn ssh.
    case spawn
    /// Release the start slot: the child is ready or gone.
    case releaseStartSlot
    /// Call back with `.retryDue` after this many seconds.
    case scheduleRetry(after: Double)
    /// Call back with `.readyDeadlinePassed` after this many seconds.
    case scheduleReadyDeadline(after: Double)
    /// Start probing the targets through the forwards.
    case startProbing
    /// Send SIGTERM to the child (then SIGKILL after a grace period).
    case terminateChild
}

/// One tunnel's life as a pure value: events in, actions out. No processes,
/// clocks or files: `now` and randomness are handed in.
public struct TunnelMachine: Sendable {
    public private(set) var state: TunnelState = .starting
    /// When the tunnel entered its current state (the caller's clock, seconds).
    public private(set) var since: Double
    /// How many times ssh was restarted after exiting.
    public private(set) var restarts = 0
    /// Consecutive failed runs; reset once a run stays up long enough.
    public private(set) var attempt = 0
    public private(set) var lastError: TunnelError?
    public private(set) var pid: Int32?
    /// When the retry is due, while in backoff or failed.
    public private(set) var retryAt: Double?

    let policy: BackoffPolicy
    /// `Entering interactive session.` lines needed: one per jump hop, plus the bastion's.
    let sessionsNeeded: Int
    let needsRemoteConfirmation: Bool
    /// How long ssh may take to become ready before it is killed and retried.
    let readyTimeout: Double
    let probes: Bool

    var sessionsSeen = 0
    var remoteConfirmed = false
    var upSince: Double?
    var stopping = false
    var killedAtDeadline = false

    public init(tunnel: TunnelConfig, policy: BackoffPolicy? = nil, now: Double) {
        self.policy = policy ?? BackoffPolicy(for: tunnel)
        self.sessionsNeeded = tunnel.jumps.count + 1
        self.needsRemoteConfirmation = !tunnel.remoteForwards.isEmpty
        // Each hop gets its own connect timeout, plus time for key exchange and auth.
        self.readyTimeout = Double(tunnel.connectTimeout * (tunnel.jumps.count + 1)) + 20
        self.probes = tunnel.probeInterval > 0 && !tunnel.localForwards.isEmpty
        self.since = now
    }

    /// The actions to start the tunnel for the first time.
    public mutating func start(at now: Double) -> [TunnelAction] {
        move(to: .starting, at: now)
        return [.spawn]
    }

    /// Feeds one event; returns what to do.
    public mutating func handle(_ event: TunnelEvent, at now: Double, random: Double = 0.5) -> [TunnelAction] {
        switch (event, state) {
        case (.stop, _):
            stopping = true
            retryAt = nil
            let running = state.hasChild
            move(to: .stopped, at: now)
            return running ? [.terminateChild] : []

        case (_, .stopped) where stopping:
            if case .spawned(let pid) = event {
                // Spawned while stopping: take it down at once.
                self.pid = pid
                return [.terminateChild]
            }
            if case .exited = event { pid = nil }
            return []

        case (.spawned(let pid), .starting):
            self.pid = pid
            sessionsSeen = 0
            remoteConfirmed = false
            killedAtDeadline = false
            move(to: .connecting, at: now)
            return [.scheduleReadyDeadline(after: readyTimeout)]

        case (.ssh(.enteredSession), .connecting):
            sessionsSeen += 1
            return becomeUpIfReady(at: now)

        case (.ssh(.remoteForwardsConfirmed), .connecting):
            remoteConfirmed = true
            return becomeUpIfReady(at: now)

        case (.ssh(.channelOpenFailed(let message)), .up), (.ssh(.channelOpenFailed(let message)), .degraded):
            lastError = TunnelError(kind: .targetUnreachable, message: message)
            if state == .up { move(to: .degraded, at: now) }
            return []

        case (.ssh(.failure(.forwardingForbidden, let message)), .up), (.ssh(.failure(.forwardingForbidden, let message)), .degraded):
            lastError = TunnelError(kind: .forwardingForbidden, message: message)
            if state == .up { move(to: .degraded, at: now) }
            return []

        case (.probeFailed(let message), .up), (.probeFailed(let message), .degraded):
            if lastError?.kind != .targetUnreachable && lastError?.kind != .forwardingForbidden || state == .up {
                lastError = TunnelError(kind: .targetUnreachable, message: message)
            }
            if state == .up { move(to: .degraded, at: now) }
            return []

        case (.probeSucceeded, .degraded):
            // last_error describes what is wrong now; the log keeps the history.
            lastError = nil
            move(to: .up, at: now)
            return []

        case (.readyDeadlinePassed, .connecting):
            killedAtDeadline = true
            return [.terminateChild]

        case (.exited(let diagnosis), .connecting), (.exited(let diagnosis), .up), (.exited(let diagnosis), .degraded):
            return childExited(diagnosis, at: now, random: random, heldStartSlot: state == .connecting)

        case (.startFailed(let diagnosis), .starting):
            return childExited(diagnosis, at: now, random: random, heldStartSlot: true)

        case (.retryDue, .backoff), (.retryDue, .failed):
            retryAt = nil
            restarts += 1
            move(to: .starting, at: now)
            return [.spawn]

        default:
            // Late or irrelevant events (a probe result after the child died,
            // a second session line once up, ssh notices) change nothing.
            return []
        }
    }

    private mutating func becomeUpIfReady(at now: Double) -> [TunnelAction] {
        guard sessionsSeen >= sessionsNeeded, remoteConfirmed || !needsRemoteConfirmation else { return [] }
        upSince = now
        // A run that comes up clears the error of the runs before it; the
        // count of consecutive failures waits until the run has proved stable.
        lastError = nil
        move(to: .up, at: now)
        return probes ? [.releaseStartSlot, .startProbing] : [.releaseStartSlot]
    }

    private mutating func childExited(_ diagnosis: ExitDiagnosis, at now: Double, random: Double, heldStartSlot: Bool) -> [TunnelAction] {
        pid = nil
        if let upSince, now - upSince >= policy.stableAfter { attempt = 0 }
        upSince = nil
        attempt += 1
        if killedAtDeadline && (diagnosis.kind == .connectionLost || diagnosis.kind == .unknown) {
            // Killed by warren's own deadline: say so, not how the signal looked.
            lastError = TunnelError(kind: .connectTimeout, message: "ssh was not ready within \(Int(readyTimeout)) s (\(diagnosis.message))")
        } else {
            lastError = TunnelError(kind: diagnosis.kind, message: diagnosis.message)
        }
        let kind = lastError!.kind
        let delay = kind.needsHuman ? policy.humanDelay(random: random) : policy.delay(attempt: attempt, random: random)
        retryAt = now + delay
        move(to: kind.needsHuman ? .failed : .backoff, at: now)
        var actions: [TunnelAction] = [.scheduleRetry(after: delay)]
        if heldStartSlot { actions.insert(.releaseStartSlot, at: 0) }
        return actions
    }

    private mutating func move(to next: TunnelState, at now: Double) {
        if next != state { since = now }
        state = next
    }
}
