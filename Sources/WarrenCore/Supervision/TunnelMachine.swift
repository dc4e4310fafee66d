/// One tunnel's life as a pure value: events in, actions out. It owns every
/// piece of the tunnel's state (the run number, the start slot, which timers
/// are armed, `since`, the failure streak); the runtime keeps none beside it.
/// No processes, clocks or files: `now` and randomness are handed in.
public struct TunnelMachine: Sendable {
    public private(set) var state: TunnelState = .starting
    /// When the tunnel entered its current state (the caller's clock, seconds).
    public private(set) var since: Double
    /// How many times ssh was started again after a run ended.
    public private(set) var restarts = 0
    public private(set) var lastError: TunnelError?
    /// The pid of the current run's ssh, while it lives.
    public private(set) var pid: Int32?
    /// When the next start is due, while in backoff or failed.
    public private(set) var retryAt: Double?
    /// The number of the current (or last) ssh run; events of other runs are stale.
    public private(set) var run = 0
    /// Whether this tunnel holds a start slot now.
    public private(set) var holdsSlot = false
    /// Stopped, and no ssh of this tunnel exists or can still start.
    public private(set) var isFinished = false
    /// Connections through each forward, from ssh's log.
    public private(set) var connections: ConnectionCounter
    /// Whether the other side closes idle connections after a fixed span.
    public internal(set) var idleCloses = IdleCloses()

    let policy: BackoffPolicy
    /// For hints with the real values (host, port, user, hop).
    let tunnel: TunnelConfig
    let defaultUser: String
    /// What ssh logged in the current run.
    public private(set) var transcript: SSHTranscript
    let needsRemoteConfirmation: Bool
    /// How long ssh may take to become ready before it is stopped and retried.
    let readyTimeout: Double
    let probesEnabled: Bool
    let probeInterval: Double
    /// How long a probe connection must stay open to count as answered.
    let probeHold: Double
    /// How a run is stopped: SIGTERM, 3 s, SIGKILL to its process group.
    public static let teardown = Teardown.standard(grace: 3)
    /// Probe cadence while degraded, so that `up` is reported within about a
    /// second of the target's return.
    public static let degradedProbeInterval = 0.5

    var streak = BackoffPolicy.Streak()
    var timers: [TunnelTimer.Purpose: TunnelTimer] = [:]
    var serial = 0
    var runAlive = false
    var awaitingSlot = false
    var stopping = false
    var upSince: Double?
    var killedAtDeadline = false
    var suspectProbe = false
    /// When the connection last carried a channel (or came up): idle since then.
    var lastActivity: Double?
    /// Reconnecting after an idle close: the tunnel is shown as `up` throughout.
    var quietReconnect = false
    /// Waiting without having tried, because the same login was just refused
    /// to another tunnel (`.loginHeld`).
    public private(set) var heldForLogin = false
    /// What is watched while in backoff (see `Watch`).
    public private(set) var watching: Watch?
    /// How long ssh took to close a probe to a dead target: the shortest hold
    /// that still tells a live target from a dead one on this path.
    var closeLatency: Double?

    /// - Parameter defaultUser: the user ssh logs in as when the config names none
    ///   (the runtime's own user name), for the hints.
    public init(tunnel: TunnelConfig, policy: BackoffPolicy? = nil, now: Double, defaultUser: String = "") {
        self.policy = policy ?? BackoffPolicy(for: tunnel)
        self.tunnel = tunnel
        self.defaultUser = defaultUser
        self.transcript = SSHTranscript(hops: tunnel.jumps.count)
        self.needsRemoteConfirmation = !tunnel.remoteForwards.isEmpty
        // Each hop gets its own connect timeout, plus time for key exchange and auth.
        self.readyTimeout = Double(tunnel.connectTimeout * (tunnel.jumps.count + 1)) + 20
        self.probesEnabled = tunnel.probeInterval > 0 && !tunnel.localForwards.isEmpty
        self.probeInterval = Double(tunnel.probeInterval)
        self.probeHold = min(Double(tunnel.connectTimeout), 2)
        self.since = now
        self.connections = ConnectionCounter(tunnel: tunnel)
    }

    /// The actions to start the tunnel for the first time.
    public mutating func start(at now: Double) -> [TunnelAction] {
        move(to: .starting, at: now)
        return requestSlot()
    }

    /// Feeds one event; returns what to do. The only place where tunnel state changes.
    public mutating func handle(_ event: TunnelEvent, at now: Double, random: Double = 0.5) -> [TunnelAction] {
        if case .counted(let index, let counts) = event {
            // A client connection opened or ended: the connection is not idle.
            if connections.take(index, counts), upSince != nil { lastActivity = now }
            return []
        }
        if stopping { return whileStopping(event, at: now) }
        switch event {
        case .stop: return stop(at: now)
        case .counted: return []  // taken above
        case .slotGranted: return slotGranted(at: now)
        case .spawned(let run, let pid):
            guard run == self.run, state == .starting else { return [] }
            self.pid = pid
            move(to: .connecting, at: now)
            return []
        case .log(let run, let line):
            guard run == self.run, let sshEvent = transcript.read(line) else { return [] }
            // A connection through a forward (a client's or a probe's) opened or
            // ended: not idle. (Not any channel line: ssh frees its listeners'
            // channels as it exits.)
            if connections.record(sshEvent), upSince != nil { lastActivity = now }
            return logged(sshEvent, at: now)
        case .forwardsAdded(let run):
            guard run == self.run, state == .connecting else { return [] }
            return becomeUp(at: now)
        case .exited(let run, let exit):
            guard run == self.run, runAlive else { return [] }
            if isIdleClose(exit, at: now) { return reconnectQuietly(at: now) }
            return runEnded(diagnosis(of: exit), at: now, random: random)
        case .timer(let timer):
            guard timers[timer.purpose] == timer else { return [] }
            timers[timer.purpose] = nil
            return fired(timer.purpose, at: now)
        case .probed(let run, let outcome):
            guard run == self.run, state == .up || state == .degraded else { return [] }
            return probed(outcome, at: now, random: random)
        case .watched(let watch, let cleared):
            guard state == .backoff, watching == watch else { return [] }
            return cleared ? startAgain(at: now) : [arm(.watch, after: watch.interval)]
        case .retryNow:
            guard state == .backoff || state == .failed else { return [] }
            return startAgain(at: now)
        case .loginHeld(let diagnosis):
            guard awaitingSlot, state == .starting else { return [] }
            return heldBack(diagnosis, at: now, random: random)
        }
    }

    // MARK: - Starting

    private mutating func requestSlot() -> [TunnelAction] {
        awaitingSlot = true
        return [.acquireSlot]
    }

    private mutating func slotGranted(at now: Double) -> [TunnelAction] {
        guard awaitingSlot, state == .starting else { return [.releaseSlot] }
        awaitingSlot = false
        holdsSlot = true
        run += 1
        runAlive = true
        transcript = SSHTranscript(hops: transcript.hops)
        killedAtDeadline = false
        suspectProbe = false
        // The deadline covers preparing the files too: a start holds a slot.
        return [.spawn(run: run), arm(.readyDeadline, after: readyTimeout)]
    }

    mutating func startAgain(at now: Double) -> [TunnelAction] {
        var actions = cancelAll()
        retryAt = nil
        watching = nil
        heldForLogin = false
        restarts += 1
        move(to: .starting, at: now)
        actions += requestSlot()
        return actions
    }

    // MARK: - What ssh logged

    private mutating func logged(_ event: SSHEvent, at now: Double) -> [TunnelAction] {
        switch (event, state) {
        case (.enteredSession, .connecting), (.remoteForwardsConfirmed, .connecting):
            return transcript.forwardsReady(remote: needsRemoteConfirmation) ? becomeUp(at: now) : []
        case (.channelOpenFailed(let message), .up), (.channelOpenFailed(let message), .degraded):
            return targetFailed(.targetUnreachable, message, at: now)
        case (.failure(.forwardingForbidden, let message), .up), (.failure(.forwardingForbidden, let message), .degraded):
            return targetFailed(.forwardingForbidden, message, at: now)
        default:
            // Failures that end ssh are judged from the whole log at exit;
            // notices and a second session line once up change nothing.
            return []
        }
    }

    private mutating func becomeUp(at now: Double) -> [TunnelAction] {
        upSince = now
        lastActivity = now
        // A run that comes up clears the error of the runs before it.
        lastError = nil
        holdsSlot = false
        move(to: .up, at: now)
        quietReconnect = false
        var actions: [TunnelAction] = [.releaseSlot] + cancel(.readyDeadline)
        if probesEnabled { actions.append(.probe(run: run, hold: probeHold)) }
        return actions
    }

    private mutating func targetFailed(_ kind: FailureKind, _ message: String, at now: Double) -> [TunnelAction] {
        lastError = error(kind, message)
        guard state == .up else { return [] }
        move(to: .degraded, at: now)
        // Watch closely from now on, so that `up` returns with the target.
        return probesEnabled ? [arm(.probe, after: Self.degradedProbeInterval)] : []
    }

    // MARK: - Probes and timers

    private mutating func probed(_ outcome: ProbeOutcome, at now: Double, random: Double) -> [TunnelAction] {
        switch outcome {
        case .answered:
            suspectProbe = false
            if state == .degraded {
                // last_error says what is wrong now; the log keeps the history.
                lastError = nil
                move(to: .up, at: now)
            }
            return [arm(.probe, after: probeInterval * (0.9 + 0.2 * random))]
        case .failed(let message, let closedAfter):
            if let closedAfter { closeLatency = closedAfter }
            if state == .up && !suspectProbe {
                // A dying ssh also closes probe connections, and its exit comes
                // within milliseconds: look once more before blaming the target.
                suspectProbe = true
                return [arm(.probe, after: 0.3)]
            }
            suspectProbe = false
            if state == .up || lastError?.kind != .forwardingForbidden {
                lastError = error(.targetUnreachable, message)
            }
            if state == .up { move(to: .degraded, at: now) }
            return [arm(.probe, after: Self.degradedProbeInterval)]
        }
    }

    private mutating func fired(_ purpose: TunnelTimer.Purpose, at now: Double) -> [TunnelAction] {
        switch purpose {
        case .retry:
            guard state == .backoff || state == .failed else { return [] }
            return startAgain(at: now)
        case .readyDeadline:
            guard runAlive, state == .starting || state == .connecting else { return [] }
            killedAtDeadline = true
            return terminate()
        case .probe:
            guard state == .up || state == .degraded else { return [] }
            return [.probe(run: run, hold: nextProbeHold)]
        case .killGrace:
            return runAlive ? [.kill(run: run)] : []
        case .watch:
            guard state == .backoff, let watching else { return [] }
            return [.check(watching)]
        }
    }

    // MARK: - The end of a run

    private mutating func runEnded(_ diagnosis: ExitDiagnosis, at now: Double, random: Double) -> [TunnelAction] {
        quietReconnect = false
        var actions = endRun()
        if killedAtDeadline && (diagnosis.kind == .connectionLost || diagnosis.kind == .unknown) {
            // Stopped by warren's own deadline: say so, not how the signal looked.
            lastError = error(.connectTimeout, "ssh was not ready within \(Int(readyTimeout)) s (\(diagnosis.message))")
        } else {
            lastError = error(diagnosis.kind, diagnosis.message)
        }
        let kind = lastError!.kind
        let end: BackoffPolicy.RunEnd = upSince.map { .wasUp(seconds: now - $0) }
            ?? (kind == .addressBlocked ? .blocked : .neverUp(needsHuman: kind.needsHuman))
        upSince = nil
        let (delay, streak) = policy.next(after: end, streak: self.streak, random: random)
        self.streak = streak
        if delay == 0 { return actions + startAgain(at: now) }
        retryAt = now + delay
        move(to: kind.needsHuman ? .failed : .backoff, at: now)
        actions.append(arm(.retry, after: delay))
        watching = Watch.after(kind, tunnel: tunnel)
        if let watching {
            // Start the moment the failure clears (the port is let go, the
            // bastion's sshd is back), not on the backoff clock.
            actions.append(arm(.watch, after: watching.interval))
        }
        return actions
    }

    /// Not started, because the same login was just refused to another
    /// tunnel: wait as that one does, for a human, saying why.
    private mutating func heldBack(_ diagnosis: ExitDiagnosis, at now: Double, random: Double) -> [TunnelAction] {
        awaitingSlot = false
        heldForLogin = true
        quietReconnect = false
        lastError = error(diagnosis.kind, diagnosis.message)
        let delay = policy.humanDelay(random: random)
        retryAt = now + delay
        move(to: .failed, at: now)
        return [arm(.retry, after: delay)]
    }

    /// What ends with every run: its pid, its slot, its timers.
    mutating func endRun() -> [TunnelAction] {
        runAlive = false
        pid = nil
        connections.runEnded()
        var actions = cancel(.readyDeadline) + cancel(.killGrace) + cancel(.probe)
        if holdsSlot {
            holdsSlot = false
            actions.insert(.releaseSlot, at: 0)
        }
        return actions
    }

    // MARK: - Stopping

    private mutating func stop(at now: Double) -> [TunnelAction] {
        stopping = true
        retryAt = nil
        awaitingSlot = false
        var actions = cancelAll()
        move(to: .stopped, at: now)
        if runAlive {
            actions += terminate()
        } else {
            isFinished = true
        }
        return actions
    }

    /// After `.stop`: only the end of the run (or its late start) matters.
    private mutating func whileStopping(_ event: TunnelEvent, at now: Double) -> [TunnelAction] {
        switch event {
        case .slotGranted:
            return [.releaseSlot]
        case .spawned(let run, let pid) where run == self.run:
            self.pid = pid
            return []
        case .exited(let run, _) where run == self.run && runAlive:
            let actions = endRun()
            isFinished = true
            return actions
        case .timer(let timer) where timers[timer.purpose] == timer:
            timers[timer.purpose] = nil
            return timer.purpose == .killGrace && runAlive ? [.kill(run: run)] : []
        default:
            return []
        }
    }

    private mutating func terminate() -> [TunnelAction] {
        // The teardown's steps: SIGTERM now, SIGKILL to the group when the grace timer fires.
        [.terminate(run: run), arm(.killGrace, after: Self.teardown.grace)]
    }

    private mutating func arm(_ purpose: TunnelTimer.Purpose, after delay: Double) -> TunnelAction {
        serial += 1
        let timer = TunnelTimer(purpose, serial: serial)
        timers[purpose] = timer
        return .arm(timer, after: delay)
    }

    private mutating func cancel(_ purpose: TunnelTimer.Purpose) -> [TunnelAction] {
        guard let timer = timers.removeValue(forKey: purpose) else { return [] }
        return [.cancel(timer)]
    }

    private mutating func cancelAll() -> [TunnelAction] {
        TunnelTimer.Purpose.allCases.flatMap { cancel($0) }
    }

    /// A failure with its hint filled in from the tunnel's values.
    private func error(_ kind: FailureKind, _ message: String) -> TunnelError {
        TunnelError(kind: kind, message: message, tunnel: tunnel, defaultUser: defaultUser)
    }

    private mutating func move(to next: TunnelState, at now: Double) {
        let shown = shownState
        state = next
        if shownState != shown { since = now }
    }
}
