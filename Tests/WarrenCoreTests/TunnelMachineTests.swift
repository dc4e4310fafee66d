import Testing
import WarrenCore

/// Drives a machine the way the runner does, keeping the armed timers so that
/// a test can fire them by purpose.
struct Drive {
    var machine: TunnelMachine
    var now = 0.0
    var timers: [TunnelTimer.Purpose: (TunnelTimer, Double)] = [:]
    var last: [TunnelAction] = []

    init(_ tunnel: TunnelConfig = TunnelMachineTests.tunnel) {
        machine = TunnelMachine(tunnel: tunnel, policy: TunnelMachineTests.policy, now: 0)
        take(machine.start(at: 0))
    }

    @discardableResult
    mutating func send(_ event: TunnelEvent, after seconds: Double = 0) -> [TunnelAction] {
        now += seconds
        take(machine.handle(event, at: now, random: 0.5))
        return last
    }

    /// Fires the armed timer of this purpose (it must be armed).
    @discardableResult
    mutating func fire(_ purpose: TunnelTimer.Purpose) -> [TunnelAction] {
        guard let (timer, delay) = timers[purpose] else {
            Issue.record("no \(purpose) timer armed")
            return []
        }
        return send(.timer(timer), after: delay)
    }

    func delay(of purpose: TunnelTimer.Purpose) -> Double? { timers[purpose]?.1 }

    private mutating func take(_ actions: [TunnelAction]) {
        last = actions
        for action in actions {
            if case .arm(let timer, let delay) = action { timers[timer.purpose] = (timer, delay) }
            if case .cancel(let timer) = action, timers[timer.purpose]?.0 == timer { timers[timer.purpose] = nil }
        }
    }

    /// slot -> spawned -> ready, for the current run.
    mutating func comeUp(sessions: Int = 1) {
        send(.slotGranted)
        let run = machine.run
        send(.spawned(run: run, pid: Int32(100 + run)))
        for _ in 0..<sessions { send(.log(run: run, "debug1: Entering interactive session.")) }
    }
}

@Suite struct TunnelMachineTests {
    static let tunnel = TunnelConfig(
        name: "db", endpoint: SSHEndpoint(host: "b", identityFile: "/k", hostKeys: []),
        localForwards: [Forward(kind: .local, listen: .tcp(host: "127.0.0.1", port: 15432), target: .tcp(host: "db", port: 5432))],
        connectTimeout: 10, backoffMin: 1, backoffMax: 60)
    static let policy = BackoffPolicy(initial: 1, maximum: 60, jitter: 0, humanRetry: 300)
    static let lost = ExitDiagnosis(kind: .connectionLost, message: "Connection to b closed by remote host.")
    static let refused = ExitDiagnosis(kind: .connectionRefused, message: "ssh: connect to host b port 22: Connection refused")

    @Test func startsThroughASlotAndIsUpOnlyOnceTheForwardsAreBound() {
        var drive = Drive()
        #expect(drive.last == [.acquireSlot])
        #expect(drive.send(.slotGranted) == [.spawn(run: 1), .arm(TunnelTimer(.readyDeadline, serial: 1), after: 30)])
        #expect(drive.machine.holdsSlot)
        drive.send(.spawned(run: 1, pid: 101))
        #expect(drive.machine.state == .connecting)
        #expect(drive.send(.log(run: 1, "Authenticated to b ([127.0.0.1]:22) using \"publickey\".")) == [], "authenticated is not ready")
        #expect(drive.send(.log(run: 1, "debug1: Entering interactive session.")) == [.releaseSlot, .cancel(TunnelTimer(.readyDeadline, serial: 1)), .probe(run: 1, hold: 2)])
        #expect(drive.machine.state == .up)
        #expect(!drive.machine.holdsSlot)
        #expect(drive.machine.pid == 101)
    }

    @Test func proxyJumpNeedsOneSessionPerHopPlusTheBastion() {
        var tunnel = Self.tunnel
        tunnel.jumps = [SSHEndpoint(host: "j", identityFile: "/k")]
        var drive = Drive(tunnel)
        drive.comeUp(sessions: 1)
        #expect(drive.machine.state == .connecting, "the hop's session line is not readiness")
        drive.send(.log(run: 1, "debug1: Entering interactive session."))
        #expect(drive.machine.state == .up)
    }

    @Test func remoteForwardsWaitForTheServersReplies() {
        var tunnel = Self.tunnel
        tunnel.localForwards = []
        tunnel.remoteForwards = [Forward(kind: .remote, listen: .tcp(host: nil, port: 9090), target: nil)]
        var drive = Drive(tunnel)
        drive.comeUp()
        #expect(drive.machine.state == .connecting, "ssh enters the session before the server answers -R")
        #expect(drive.send(.log(run: 1, "debug1: forwarding_success: all expected forwarding replies received")).contains(.releaseSlot))
        #expect(drive.machine.state == .up)
        #expect(!drive.last.contains { if case .probe = $0 { return true } else { return false } }, "no local forward, no probes")
    }

    @Test func aTunnelThatWasUpIsRestartedAtOnceEveryTime() {
        var drive = Drive()
        for kill in 1...10 {
            drive.comeUp()
            #expect(drive.machine.state == .up)
            let actions = drive.send(.exited(run: drive.machine.run, .diagnosed(Self.lost)), after: 1)
            #expect(actions.contains(.acquireSlot), "kill \(kill): the next attempt starts at once")
            #expect(drive.machine.state == .starting)
            #expect(drive.machine.lastError?.kind == .connectionLost, "and says why the run ended")
            #expect(drive.delay(of: .retry) == nil)
        }
        #expect(drive.machine.restarts == 10)
    }

    @Test func onlyAttemptsThatNeverCameUpBackOff() {
        var drive = Drive()
        drive.comeUp()
        drive.send(.exited(run: 1, .diagnosed(Self.lost)), after: 60)
        var waits: [Double] = []
        for _ in 0..<4 {
            drive.send(.slotGranted)
            drive.send(.exited(run: drive.machine.run, .diagnosed(Self.refused)))
            #expect(drive.machine.state == .backoff)
            #expect(drive.machine.lastError?.kind == .connectionRefused)
            waits.append(drive.delay(of: .retry) ?? -1)
            drive.fire(.retry)
        }
        #expect(waits == [1, 2, 4, 8])
        drive.comeUp()
        drive.send(.exited(run: drive.machine.run, .diagnosed(Self.lost)), after: 2)
        #expect(drive.machine.state == .starting, "up again: the streak is over")
    }

    @Test(arguments: [FailureKind.authFailed, .hostKeyChanged, .hostKeyUnknown, .keyMissing, .keyPermissions])
    func failuresThatNeedAHumanRetrySlowly(kind: FailureKind) {
        var drive = Drive()
        drive.send(.slotGranted)
        drive.send(.exited(run: 1, .diagnosed(ExitDiagnosis(kind: kind, message: "m"))))
        #expect(drive.machine.state == .failed)
        #expect(drive.delay(of: .retry) == 300)
        #expect(drive.machine.retryAt == 300)
        drive.send(.retryNow)
        #expect(drive.machine.state == .starting, "an operator's retry starts at once")
    }

    @Test func aDeadTargetDegradesAfterASecondLookAndComesBackWithin() {
        var drive = Drive()
        drive.comeUp()
        drive.send(.probed(run: 1, .failed(message: "closed", closedAfter: 0.004)), after: 2)
        #expect(drive.machine.state == .up, "one failed probe may be a dying ssh: look again")
        #expect(drive.delay(of: .probe) == 0.3)
        #expect(drive.fire(.probe) == [.probe(run: 1, hold: 0.25)])
        drive.send(.probed(run: 1, .failed(message: "closed", closedAfter: 0.004)))
        #expect(drive.machine.state == .degraded)
        #expect(drive.machine.lastError?.kind == .targetUnreachable)
        #expect(drive.delay(of: .probe) == TunnelMachine.degradedProbeInterval, "degraded: probed often")
        drive.fire(.probe)
        drive.send(.probed(run: 1, .answered), after: 0.25)
        #expect(drive.machine.state == .up)
        #expect(drive.machine.lastError == nil)
        #expect(drive.delay(of: .probe) == 30, "up: back to probe_interval")
    }

    @Test func aChannelFailureDegradesAtOnceAndProbesWatchForTheReturn() {
        var drive = Drive()
        drive.comeUp()
        drive.send(.log(run: 1, "channel 3: open failed: connect failed: Connection refused"))
        #expect(drive.machine.state == .degraded)
        #expect(drive.delay(of: .probe) == TunnelMachine.degradedProbeInterval)
        drive.send(.log(run: 1, "channel 4: open failed: administratively prohibited: open failed"))
        #expect(drive.machine.lastError?.kind == .forwardingForbidden)
    }

    @Test func aPortHeldByAnotherProgramIsWatchedAndTakenTheMomentItIsFree() {
        var drive = Drive()
        drive.send(.slotGranted)
        drive.send(.exited(run: 1, .diagnosed(ExitDiagnosis(kind: .localPortInUse, message: "bind [127.0.0.1]:15432: Address already in use"))))
        #expect(drive.machine.state == .backoff)
        #expect(drive.delay(of: .watch) == Watch.localPorts.interval)
        #expect(drive.fire(.watch) == [.check(.localPorts)])
        drive.send(.watched(.localPorts, cleared: false))
        #expect(drive.machine.state == .backoff)
        drive.fire(.watch)
        let actions = drive.send(.watched(.localPorts, cleared: true))
        #expect(drive.machine.state == .starting)
        #expect(actions.contains(.acquireSlot))
        #expect(actions.contains { if case .cancel(let t) = $0 { return t.purpose == .retry } else { return false } }, "the backoff timer is dropped")
    }

    @Test func aHungStartIsStoppedAtItsDeadlineThenKilled() {
        var drive = Drive()
        drive.send(.slotGranted)
        drive.send(.spawned(run: 1, pid: 7))
        #expect(drive.fire(.readyDeadline) == [.terminate(run: 1), .arm(TunnelTimer(.killGrace, serial: 2), after: TunnelMachine.teardown.grace)])
        #expect(TunnelMachine.teardown == Teardown(steps: [.terminate, .wait(3), .killGroup]))
        #expect(drive.fire(.killGrace) == [.kill(run: 1)])
        drive.send(.exited(run: 1, .diagnosed(ExitDiagnosis(kind: .connectionLost, message: "ssh was killed by signal 9"))))
        #expect(drive.machine.lastError?.kind == .connectTimeout)
        #expect(drive.machine.state == .backoff)
        #expect(!drive.machine.holdsSlot)
        #expect(drive.last.first == .releaseSlot)
    }

    @Test func stopWaitsForTheChildToExitAndThenIsFinished() {
        var drive = Drive()
        drive.comeUp()
        #expect(drive.send(.stop).contains(.terminate(run: 1)))
        #expect(drive.machine.state == .stopped)
        #expect(!drive.machine.isFinished, "ssh still runs")
        drive.send(.log(run: 1, "channel 5: open failed: connect failed: Connection refused"))
        drive.send(.probed(run: 1, .answered))
        #expect(drive.machine.state == .stopped)
        drive.send(.exited(run: 1, .diagnosed(Self.lost)))
        #expect(drive.machine.isFinished)
        #expect(drive.machine.pid == nil)
    }

    @Test func stopWhileTheFilesArePreparedKeepsSshFromStarting() {
        var drive = Drive()
        drive.send(.slotGranted)
        // prepare() still runs: no spawned yet.
        #expect(drive.send(.stop).contains(.terminate(run: 1)), "the runner keeps the run from spawning")
        #expect(!drive.machine.isFinished)
        drive.send(.exited(run: 1, .diagnosed(ExitDiagnosis(kind: .connectionLost, message: "ssh was stopped before it started"))))
        #expect(drive.machine.isFinished)
        #expect(drive.last == [.releaseSlot, .cancel(TunnelTimer(.killGrace, serial: 2))])
    }

    @Test func stopWhileWaitingForASlotOrInBackoffEndsAtOnce() {
        var waiting = Drive()
        waiting.send(.stop)
        #expect(waiting.machine.isFinished)
        #expect(waiting.send(.slotGranted) == [.releaseSlot], "a slot granted too late goes back")

        var backingOff = Drive()
        backingOff.send(.slotGranted)
        backingOff.send(.exited(run: 1, .diagnosed(Self.refused)))
        #expect(backingOff.send(.stop) == [.cancel(TunnelTimer(.retry, serial: 2)), .cancel(TunnelTimer(.watch, serial: 3))], "the retry, and the watch on the refusing bastion")
        #expect(backingOff.machine.isFinished)
        #expect(backingOff.machine.retryAt == nil)
    }

    @Test func eventsOfAnEarlierRunAndCancelledTimersChangeNothing() {
        var drive = Drive()
        drive.comeUp()
        let oldProbe = drive.timers[.probe]
        drive.send(.exited(run: 1, .diagnosed(Self.lost)), after: 5)
        drive.comeUp()
        #expect(drive.machine.run == 2)
        #expect(drive.send(.exited(run: 1, .diagnosed(Self.lost))) == [])
        #expect(drive.send(.log(run: 1, "channel 6: open failed: connect failed: Connection refused")) == [])
        #expect(drive.send(.probed(run: 1, .failed(message: "old", closedAfter: 0.1))) == [])
        #expect(drive.send(.timer(TunnelTimer(.readyDeadline, serial: 1))) == [])
        if let oldProbe { #expect(drive.send(.timer(oldProbe.0)) == []) }
        #expect(drive.machine.state == .up)
    }

    @Test func sinceFollowsEveryStateChange() {
        var drive = Drive()
        drive.send(.slotGranted, after: 1)
        drive.send(.spawned(run: 1, pid: 1), after: 1)
        #expect(drive.machine.since == 2)
        drive.send(.log(run: 1, "debug1: Entering interactive session."), after: 1)
        #expect(drive.machine.since == 3)
        drive.send(.probed(run: 1, .answered), after: 5)
        #expect(drive.machine.since == 3, "a probe that finds what was known changes nothing")
    }

    @Test func aBastionThatRefusedIsWatchedAndDialledTheMomentItAcceptsAgain() {
        var drive = Drive()
        drive.comeUp()
        drive.send(.exited(run: 1, .diagnosed(Self.lost)), after: 10)  // the bastion's sshd went away: at once
        drive.send(.slotGranted)
        drive.send(.exited(run: 2, .diagnosed(Self.refused)))
        #expect(drive.machine.state == .backoff)
        #expect(drive.delay(of: .watch) == Watch.bastion.interval)
        #expect(drive.fire(.watch) == [.check(.bastion)])
        drive.send(.watched(.bastion, cleared: false))
        #expect(drive.machine.state == .backoff, "still refused: keep watching")
        drive.fire(.watch)
        drive.send(.watched(.bastion, cleared: true))
        #expect(drive.machine.state == .starting, "the bastion accepts again: dial now, not on the backoff clock")
        #expect(drive.timers[.retry] == nil)
    }

    @Test func behindAJumpHopARefusalIsNotWatched() {
        var tunnel = Self.tunnel
        tunnel.jumps = [SSHEndpoint(host: "j", identityFile: "/k")]
        var drive = Drive(tunnel)
        drive.send(.slotGranted)
        drive.send(.exited(run: 1, .diagnosed(Self.refused)))
        #expect(drive.timers[.watch] == nil, "the refusing host cannot be dialled from here")
        #expect(drive.machine.watching == nil)
    }

    /// Counts of a listener warren holds reach status, and a client
    /// connection is activity: the idle span starts over.
    @Test func heldListenerCountsAreTakenAndAreActivity() {
        var drive = Drive()
        drive.comeUp()
        var counts = ListenerCounts()
        counts.opened = 1
        counts.open = 1
        #expect(drive.send(.counted(index: 0, counts), after: 5).isEmpty, "counting decides nothing")
        #expect(drive.machine.connections.counts[0].total == 1 && drive.machine.connections.counts[0].open == 1)
        drive.send(.stop)
        counts.open = 0
        drive.send(.counted(index: 0, counts))
        #expect(drive.machine.connections.counts[0].open == 0, "counted while stopping too")
    }
}
