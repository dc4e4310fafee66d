import Testing
import WarrenCore

/// What newer servers do that 9.2 on this machine never showed: a bastion that
/// refuses this address before its banner (PerSourcePenalties since 9.8,
/// MaxStartups, a firewall), and one that closes idle connections.
@Suite struct FieldTests {
    // MARK: - Closed before the banner

    /// As OpenSSH 9.2 and 10.5 print them when sshd drops the connection at
    /// accept (a penalised address; recorded in Fixtures/stderr/banner_closed.txt).
    @Test(arguments: [
        ["kex_exchange_identification: Connection closed by remote host", "Connection closed by 127.0.0.1 port 45122"],
        ["kex_exchange_identification: read: Connection reset by peer", "Connection reset by 127.0.0.1 port 45122"],
    ])
    func aConnectionClosedBeforeTheBannerIsABlockNotALostConnection(_ lines: [String]) {
        let diagnosis = StderrClassifier.diagnose(lines: lines, exitStatus: 255)
        #expect(diagnosis.kind == .addressBlocked)
        #expect(diagnosis.message == lines[0])
    }

    @Test func aJumpHopsOwnFailureStillOutranksTheOuterSshsBannerLine() {
        let lines = [
            "ssh: connect to host 127.0.0.1 port 58785: Connection refused",
            "kex_exchange_identification: Connection closed by remote host",
            "Connection closed by UNKNOWN port 65535",
        ]
        #expect(StderrClassifier.diagnose(lines: lines, exitStatus: 255, jumpHops: 1).kind == .connectionRefused)
    }

    @Test func theServersOwnWordsBeforeTheBannerDecideNothing() {
        // What a raw read of a blocked sshd's socket may get; ssh never prints
        // it as its own line, and if a server sent it as a banner it is text.
        #expect(StderrClassifier().classify(line: "Not allowed at this time") == nil)
        let other = StderrClassifier.diagnose(lines: ["kex_exchange_identification: banner line contains invalid characters"], exitStatus: 255)
        #expect(other.kind == .connectionLost, "only the close and the reset before the banner are a block")
    }

    @Test func theHintNamesTheCausesTheWaitAndWhatTheAdminChecks() {
        let hint = FailureKind.addressBlocked.hint
        for needle in ["PerSourcePenalties", "MaxStartups", "fail2ban", "10 minutes", "sshd -T | grep -i persource", "PerSourcePenaltyExemptList", "drop connection", "without adding to it"] {
            #expect(hint.contains(needle), "\(needle)")
        }
        #expect(!FailureKind.addressBlocked.needsHuman)
    }

    @Test func aBlockIsRetriedSteadilyAndNeverGrowsTheStreak() {
        let policy = BackoffPolicy(initial: 1, maximum: 60, jitter: 0)
        var streak = BackoffPolicy.Streak()
        for _ in 0..<20 {
            let (delay, next) = policy.next(after: .blocked, streak: streak, random: 0.5)
            #expect(delay == 3)
            streak = next
        }
        #expect(streak.failures == 0)
    }

    @Test func aBlockedTunnelWaitsInBackoffNamingTheBlock() {
        var drive = Drive()
        drive.comeUp()
        let blocked = ExitDiagnosis(kind: .addressBlocked, message: "kex_exchange_identification: Connection closed by remote host")
        drive.send(.exited(run: 1, .diagnosed(TunnelMachineTests.lost)), after: 30)
        #expect(drive.machine.state == .starting, "a tunnel that was up reconnects at once")
        for _ in 0..<5 {
            drive.send(.slotGranted)
            drive.send(.exited(run: drive.machine.run, .diagnosed(blocked)))
            #expect(drive.machine.state == .backoff)
            #expect(drive.machine.lastError?.kind == .addressBlocked)
            #expect(drive.delay(of: .retry) == 3)
            drive.fire(.retry)
        }
    }

    // MARK: - Idle closes

    @Test func twoQuietClosesAfterAboutTheSameIdleSpanAreAnIdleTimer() {
        var closes = IdleCloses()
        var seen = closes.observe(idleFor: 5.1)
        #expect(!seen, "one close is not a pattern")
        seen = closes.observe(idleFor: 4.8)
        #expect(seen)
        #expect(closes.span.map { abs($0 - 4.95) < 0.01 } == true)
        seen = closes.observe(idleFor: 5.3)
        #expect(seen)
        #expect(closes.count == 2)
        seen = closes.observe(idleFor: 2.5)
        #expect(!seen, "a close sooner than the timer is not the timer")
        seen = closes.observe(idleFor: 20.8)
        #expect(seen, "a close after longer idleness is the timer started later")
        seen = closes.observe(idleFor: 5.0)
        #expect(seen, "the recognised span still holds")
        #expect(closes.span.map { abs($0 - 5.07) < 0.1 } == true, "the longer close does not move the span: \(String(describing: closes.span))")
        #expect(closes.description?.contains("about 5 s") == true)
    }

    @Test func closesAfterDifferentSpansOrTooQuicklyAreNotATimer() {
        var closes = IdleCloses()
        let seen = [5, 12, 30, 0.3, 0.4].map { closes.observe(idleFor: $0) }
        #expect(seen == [false, false, false, false, false], "other spans and quick drops are not a timer")
        #expect(closes.span == nil)
    }

    /// The remote closing: ssh's exit status 255, `Connection to H closed by remote host.`
    static let closedByRemote = ChildExit.process(exitCode: 255, signal: nil)

    @Test func anIdleCloseIsNotAFailureAndTheTunnelDoesNotFlap() {
        var drive = Drive()
        drive.comeUp()
        let closeLine = "Connection to b closed by remote host."
        // First close: cannot be told from a drop yet.
        drive.send(.log(run: 1, closeLine), after: 5)
        drive.send(.exited(run: 1, Self.closedByRemote))
        #expect(drive.machine.shownState == .starting)
        #expect(drive.machine.lastError?.kind == .connectionLost)
        drive.comeUp()
        #expect(drive.machine.lastError == nil)
        for close in 2...4 {
            let run = drive.machine.run
            drive.send(.log(run: run, closeLine), after: 5.2)
            let actions = drive.send(.exited(run: run, Self.closedByRemote))
            #expect(actions.contains(.acquireSlot), "close \(close): reconnects at once")
            #expect(drive.machine.shownState == .up, "close \(close): shown as up while it reconnects")
            #expect(drive.machine.lastError == nil, "close \(close): not a failure")
            drive.send(.slotGranted)
            drive.send(.spawned(run: drive.machine.run, pid: 200))
            #expect(drive.machine.shownState == .up)
            drive.send(.log(run: drive.machine.run, "debug1: Entering interactive session."))
            #expect(drive.machine.state == .up)
        }
        #expect(drive.machine.idleCloses.count == 3)
        let status = IdleCloseStatus(drive.machine.idleCloses)
        #expect(status?.afterSeconds == 5)
        #expect(status?.closes == 4)
    }

    @Test func aReconnectAfterAnIdleCloseThatFailsIsAFailureAgain() {
        var drive = Drive()
        drive.comeUp()
        for _ in 0..<2 {
            drive.send(.exited(run: drive.machine.run, Self.closedByRemote), after: 5)
            drive.comeUp()
        }
        drive.send(.exited(run: drive.machine.run, Self.closedByRemote), after: 5)
        #expect(drive.machine.shownState == .up)
        drive.send(.slotGranted)
        drive.send(.exited(run: drive.machine.run, .diagnosed(TunnelMachineTests.refused)))
        #expect(drive.machine.shownState == .backoff)
        #expect(drive.machine.lastError?.kind == .connectionRefused)
    }

    @Test func aKillOrABusyConnectionIsNeverAnIdleClose() {
        var drive = Drive()
        drive.comeUp()
        drive.send(.exited(run: 1, Self.closedByRemote), after: 5)
        drive.comeUp()
        // Killed by a signal after the same span: not the remote's timer.
        drive.send(.exited(run: drive.machine.run, .process(exitCode: nil, signal: 9)), after: 5)
        #expect(drive.machine.lastError?.kind == .connectionLost)
        #expect(drive.machine.idleCloses.span == nil)
        drive.comeUp()
        // A connection open through the forward at the close: not idle.
        let run = drive.machine.run
        drive.send(.log(run: run, "debug1: Connection to port 15432 forwarding to db port 5432 requested."), after: 1)
        drive.send(.log(run: run, "debug1: channel 1: new direct-tcpip [direct-tcpip] (inactive timeout: 0)"))
        drive.send(.exited(run: run, Self.closedByRemote), after: 4)
        drive.comeUp()
        drive.send(.exited(run: drive.machine.run, Self.closedByRemote), after: 5)
        #expect(drive.machine.idleCloses.span == nil, "the busy close broke the pattern")
        #expect(drive.machine.lastError?.kind == .connectionLost)
    }

    @Test func idleClosesAreCountedApartFromRestartsInTheMetrics() {
        var metrics = TunnelMetrics(startedAt: 0)
        var drive = Drive()
        drive.comeUp()
        func status(_ machine: TunnelMachine) -> TunnelStatus {
            TunnelStatus(name: "db", state: machine.shownState, since: "", pid: machine.pid, restarts: machine.restarts, forwards: [],
                         lastError: machine.lastError, nextRetry: nil, idleClose: IdleCloseStatus(machine.idleCloses))
        }
        metrics.observe(status(drive.machine), wallClock: 0, monotonic: 0)
        drive.send(.exited(run: drive.machine.run, Self.closedByRemote), after: 5)
        metrics.observe(status(drive.machine), wallClock: 5, monotonic: 5)
        drive.comeUp()
        metrics.observe(status(drive.machine), wallClock: 5, monotonic: 5)
        for i in 0..<3 {
            drive.send(.exited(run: drive.machine.run, Self.closedByRemote), after: 5)
            metrics.observe(status(drive.machine), wallClock: 10 + Double(i), monotonic: 10)
            drive.comeUp()
            metrics.observe(status(drive.machine), wallClock: 10 + Double(i), monotonic: 10)
        }
        let text = metrics.render()
        #expect(text.contains("warren_tunnel_idle_closes_total{tunnel=\"db\"} 4"))
        #expect(text.contains("warren_tunnel_idle_close_seconds{tunnel=\"db\"} 5"))
        #expect(text.contains("warren_tunnel_restarts_total{tunnel=\"db\",kind=\"connection_lost\"} 1"), "only the first close, before the pattern was known")
    }
}
