import Testing
import WarrenCore

@Suite struct TunnelMachineTests {
    static let tunnel = TunnelConfig(
        name: "db", endpoint: SSHEndpoint(host: "b", identityFile: "/k", hostKeys: []),
        localForwards: [Forward(kind: .local, listen: .tcp(host: "127.0.0.1", port: 15432), target: .tcp(host: "db", port: 5432))],
        connectTimeout: 10, backoffMin: 1, backoffMax: 60)
    static let policy = BackoffPolicy(initial: 1, maximum: 60, jitter: 0, stableAfter: 30, humanRetry: 300)

    func upMachine(_ tunnel: TunnelConfig = tunnel, at time: Double = 0) -> TunnelMachine {
        var machine = TunnelMachine(tunnel: tunnel, policy: Self.policy, now: time)
        #expect(machine.start(at: time) == [.spawn])
        #expect(machine.handle(.spawned(pid: 100), at: time) == [.scheduleReadyDeadline(after: 30)])
        #expect(machine.state == .connecting)
        #expect(machine.handle(.ssh(.authenticated), at: time) == [], "authenticated is not ready")
        #expect(machine.handle(.ssh(.enteredSession), at: time) == [.releaseStartSlot, .startProbing])
        #expect(machine.state == .up)
        return machine
    }

    @Test func startsConnectsAndComesUp() {
        let machine = upMachine()
        #expect(machine.pid == 100)
        #expect(machine.restarts == 0)
        #expect(machine.lastError == nil)
    }

    @Test func proxyJumpNeedsOneSessionPerHopPlusTheBastion() {
        var tunnel = Self.tunnel
        tunnel.jumps = [SSHEndpoint(host: "j", identityFile: "/k")]
        var machine = TunnelMachine(tunnel: tunnel, policy: Self.policy, now: 0)
        _ = machine.start(at: 0)
        _ = machine.handle(.spawned(pid: 1), at: 0)
        #expect(machine.handle(.ssh(.enteredSession), at: 0) == [], "the hop's session line is not readiness")
        #expect(machine.state == .connecting)
        #expect(machine.handle(.ssh(.enteredSession), at: 0).contains(.releaseStartSlot))
        #expect(machine.state == .up)
    }

    @Test func remoteForwardsWaitForTheServersReplies() {
        var tunnel = Self.tunnel
        tunnel.localForwards = []
        tunnel.remoteForwards = [Forward(kind: .remote, listen: .tcp(host: nil, port: 9090), target: nil)]
        var machine = TunnelMachine(tunnel: tunnel, policy: Self.policy, now: 0)
        _ = machine.start(at: 0)
        _ = machine.handle(.spawned(pid: 1), at: 0)
        _ = machine.handle(.ssh(.enteredSession), at: 0)
        #expect(machine.state == .connecting, "ssh enters the session before the server answers -R")
        #expect(machine.handle(.ssh(.remoteForwardsConfirmed), at: 0) == [.releaseStartSlot], "no local forward, no probes")
        #expect(machine.state == .up)
    }

    @Test func exitWhileUpBacksOffThenRestarts() {
        var machine = upMachine()
        let actions = machine.handle(.exited(ExitDiagnosis(kind: .connectionLost, message: "Connection to b closed by remote host.")), at: 5)
        #expect(actions == [.scheduleRetry(after: 0)], "a tunnel that was up is retried at once")
        #expect(machine.state == .backoff)
        #expect(machine.lastError?.kind == .connectionLost)
        #expect(machine.lastError?.hint == FailureKind.connectionLost.hint)
        #expect(machine.pid == nil)
        #expect(machine.handle(.retryDue, at: 6) == [.spawn])
        #expect(machine.state == .starting)
        #expect(machine.restarts == 1)
    }

    @Test func consecutiveFailuresBackOffExponentiallyAndStableRunsReset() {
        var machine = TunnelMachine(tunnel: Self.tunnel, policy: Self.policy, now: 0)
        _ = machine.start(at: 0)
        var delays: [Double] = []
        var t = 0.0
        for _ in 0..<4 {
            _ = machine.handle(.spawned(pid: 1), at: t)
            let actions = machine.handle(.exited(ExitDiagnosis(kind: .connectionRefused, message: "refused")), at: t)
            #expect(actions.first == .releaseStartSlot, "a run that never came up gives its start slot back")
            if case .scheduleRetry(let d)? = actions.last { delays.append(d) }
            t += 100
            _ = machine.handle(.retryDue, at: t)
        }
        #expect(delays == [0, 1, 2, 4])
        // Up for longer than stableAfter: the next failure starts over at the first delay.
        _ = machine.handle(.spawned(pid: 1), at: t)
        _ = machine.handle(.ssh(.enteredSession), at: t)
        let actions = machine.handle(.exited(ExitDiagnosis(kind: .keepaliveTimeout, message: "Timeout")), at: t + 31)
        #expect(actions == [.scheduleRetry(after: 0)])
        #expect(machine.attempt == 1)
    }

    @Test func shortLivedUpDoesNotResetTheBackoff() {
        var machine = TunnelMachine(tunnel: Self.tunnel, policy: Self.policy, now: 0)
        _ = machine.start(at: 0)
        for i in 0..<3 {
            _ = machine.handle(.spawned(pid: 1), at: Double(i))
            _ = machine.handle(.ssh(.enteredSession), at: Double(i))
            _ = machine.handle(.exited(ExitDiagnosis(kind: .connectionLost, message: "x")), at: Double(i) + 0.5)
            _ = machine.handle(.retryDue, at: Double(i) + 0.9)
        }
        #expect(machine.attempt == 3, "a tunnel that flaps keeps backing off")
    }

    @Test(arguments: [FailureKind.authFailed, .hostKeyChanged, .hostKeyUnknown, .keyMissing, .keyPermissions])
    func failuresThatNeedAHumanGoToFailedAndRetrySlowly(_ kind: FailureKind) {
        var machine = TunnelMachine(tunnel: Self.tunnel, policy: Self.policy, now: 0)
        _ = machine.start(at: 0)
        _ = machine.handle(.spawned(pid: 1), at: 0)
        let actions = machine.handle(.exited(ExitDiagnosis(kind: kind, message: "m")), at: 0)
        #expect(actions == [.releaseStartSlot, .scheduleRetry(after: 300)])
        #expect(machine.state == .failed)
        #expect(machine.lastError == TunnelError(kind: kind, message: "m"))
        #expect(machine.retryAt == 300)
        #expect(machine.handle(.retryDue, at: 300) == [.spawn])
    }

    @Test(arguments: [FailureKind.connectionRefused, .connectTimeout, .dnsFailure, .localPortInUse, .keepaliveTimeout, .connectionLost, .unknown, .remoteForwardFailed])
    func transientFailuresBackOff(_ kind: FailureKind) {
        var machine = TunnelMachine(tunnel: Self.tunnel, policy: Self.policy, now: 0)
        _ = machine.start(at: 0)
        _ = machine.handle(.spawned(pid: 1), at: 0)
        _ = machine.handle(.exited(ExitDiagnosis(kind: kind, message: "m")), at: 0)
        #expect(machine.state == .backoff)
    }

    @Test func deadTargetDegradesAndComesBack() {
        var machine = upMachine()
        #expect(machine.handle(.ssh(.channelOpenFailed(message: "channel 2: open failed: connect failed: Connection refused")), at: 1) == [])
        #expect(machine.state == .degraded)
        #expect(machine.lastError?.kind == .targetUnreachable)
        #expect(machine.lastError?.message.contains("channel 2") == true)
        _ = machine.handle(.probeFailed(message: "closed"), at: 2)
        #expect(machine.state == .degraded)
        #expect(machine.lastError?.message.contains("channel 2") == true, "ssh's own line is kept over the probe's")
        _ = machine.handle(.probeSucceeded, at: 3)
        #expect(machine.state == .up)
        #expect(machine.lastError == nil, "an up tunnel has no current error")
        _ = machine.handle(.probeFailed(message: "closed"), at: 4)
        #expect(machine.state == .degraded)
        #expect(machine.lastError?.message == "closed")
    }

    @Test func forbiddenForwardingDegradesWithItsOwnKind() {
        var machine = upMachine()
        _ = machine.handle(.ssh(.failure(.forwardingForbidden, message: "channel 1: open failed: administratively prohibited: open failed")), at: 1)
        #expect(machine.state == .degraded)
        #expect(machine.lastError?.kind == .forwardingForbidden)
    }

    @Test func readyDeadlineKillsAHungChildAndNamesTheTimeout() {
        var machine = TunnelMachine(tunnel: Self.tunnel, policy: Self.policy, now: 0)
        _ = machine.start(at: 0)
        _ = machine.handle(.spawned(pid: 1), at: 0)
        #expect(machine.handle(.readyDeadlinePassed, at: 30) == [.terminateChild])
        _ = machine.handle(.exited(ExitDiagnosis(kind: .connectionLost, message: "ssh was killed by signal 15")), at: 30.1)
        #expect(machine.lastError?.kind == .connectTimeout)
        #expect(machine.state == .backoff)
    }

    @Test func deadlineAfterReadyIsIgnored() {
        var machine = upMachine()
        #expect(machine.handle(.readyDeadlinePassed, at: 30) == [])
        #expect(machine.state == .up)
    }

    @Test func stopTerminatesARunningChildAndIgnoresWhatFollows() {
        var machine = upMachine()
        #expect(machine.handle(.stop, at: 1) == [.terminateChild])
        #expect(machine.state == .stopped)
        #expect(machine.handle(.exited(ExitDiagnosis(kind: .connectionLost, message: "x")), at: 1.1) == [])
        #expect(machine.state == .stopped)
        #expect(machine.handle(.retryDue, at: 5) == [])
        #expect(machine.state == .stopped)
    }

    @Test func stopDuringBackoffNeedsNoSignal() {
        var machine = upMachine()
        _ = machine.handle(.exited(ExitDiagnosis(kind: .connectionLost, message: "x")), at: 1)
        #expect(machine.handle(.stop, at: 1.5) == [])
        #expect(machine.state == .stopped)
    }

    @Test func aChildSpawnedAfterStopIsTerminatedAtOnce() {
        var machine = TunnelMachine(tunnel: Self.tunnel, policy: Self.policy, now: 0)
        _ = machine.start(at: 0)
        _ = machine.handle(.stop, at: 0)
        #expect(machine.handle(.spawned(pid: 7), at: 0.1) == [.terminateChild])
    }

    @Test func comingUpClearsTheLastError() {
        var machine = upMachine()
        _ = machine.handle(.exited(ExitDiagnosis(kind: .connectionLost, message: "x")), at: 1)
        _ = machine.handle(.retryDue, at: 2)
        _ = machine.handle(.spawned(pid: 2), at: 2)
        #expect(machine.lastError != nil, "the error stays visible while reconnecting")
        _ = machine.handle(.ssh(.enteredSession), at: 2.2)
        #expect(machine.lastError == nil)
        #expect(machine.since == 2.2)
    }

    @Test func lateEventsOfNoConcernChangeNothing() {
        var machine = upMachine()
        let before = machine.state
        #expect(machine.handle(.ssh(.notice("Warning: Permanently added")), at: 1) == [])
        #expect(machine.handle(.ssh(.enteredSession), at: 1) == [])
        #expect(machine.handle(.retryDue, at: 1) == [])
        #expect(machine.state == before)
    }
}

extension TunnelMachineTests {
    @Test func aStartThatFailsBeforeSpawningIsRetriedLikeAnExit() {
        var machine = TunnelMachine(tunnel: Self.tunnel, policy: Self.policy, now: 0)
        _ = machine.start(at: 0)
        let actions = machine.handle(.startFailed(ExitDiagnosis(kind: .hostKeyChanged, message: "no key has the pinned fingerprint")), at: 0)
        #expect(actions == [.releaseStartSlot, .scheduleRetry(after: 300)])
        #expect(machine.state == .failed)
        #expect(machine.lastError?.kind == .hostKeyChanged)
        #expect(machine.handle(.retryDue, at: 300) == [.spawn], "retried: the bastion may be back, or re-pinned")

        var transient = TunnelMachine(tunnel: Self.tunnel, policy: Self.policy, now: 0)
        _ = transient.start(at: 0)
        _ = transient.handle(.startFailed(ExitDiagnosis(kind: .connectionRefused, message: "ssh-keyscan: nothing answered")), at: 0)
        #expect(transient.state == .backoff)
    }

    @Test func startFailedOutsideStartingIsIgnored() {
        var machine = upMachine()
        #expect(machine.handle(.startFailed(ExitDiagnosis(kind: .unknown, message: "x")), at: 1) == [])
        #expect(machine.state == .up)
    }
}
