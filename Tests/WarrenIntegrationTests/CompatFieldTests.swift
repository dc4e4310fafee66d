import Foundation
import Testing
import WarrenCore
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The field issue's measures against OpenSSH 10.5p1's sshd with its default
/// settings (PerSourcePenalties on), through the real binary: warren never
/// locks this machine out of a healthy bastion, a block it did not cause is
/// named as one, and an idle timeout on the bastion is not a failure.
/// Part of `make test-compat` (it needs the 10.5 build).
@Suite(.serialized, compatOnly) struct CompatFieldTests {
    static func bastion(extraConfig: [String] = [], tunnel extra: String = "") throws -> Lab {
        try Lab.bastion(try Compat.Server.openSSH105.options(SSHDServer.Options(extraConfig: extraConfig)), extra: extra)
    }

    /// Failed logins sshd counted for this address so far (sshd's lines end in \r\n: count occurrences).
    static func count(_ text: String, in sshd: SSHDServer) -> Int {
        sshd.logText().components(separatedBy: text).count - 1
    }

    /// Until `condition` holds, by status.json; how long that took.
    static func time(_ warren: WarrenSupervisor, _ name: String, timeout: Duration = .seconds(30), _ condition: (TunnelStatus) -> Bool) -> Duration? {
        let started = ContinuousClock.now
        return warren.waitFor(name, timeout: timeout, condition) != nil ? ContinuousClock.now - started : nil
    }

    /// Until data passes through `port` again; how long that took.
    static func untilEcho(port: Int, timeout: Duration = .seconds(20)) -> Duration? {
        let started = ContinuousClock.now
        return waitUntil(timeout: timeout, every: .milliseconds(20)) { (try? TCPClient.echo(port: port, timeout: .seconds(1))) == true }
            ? ContinuousClock.now - started : nil
    }

    @Test func eightDoctorRunsInARowPassAndATunnelRecoversRightAfter() async throws {
        let lab = try Self.bastion()
        defer { lab.stop() }
        for run in 1...8 {
            let (result, report) = try await lab.doctor("db")
            #expect(result.status == 0 && report.failedNumbers.isEmpty, "doctor run \(run): \(result.stdout)")
            if run == 1 {
                let banner = report.step(5)?.evidence.joined(separator: "\n") ?? ""
                #expect(banner.contains("OpenSSH_10.5") && banner.contains("PerSourcePenalties are on by default"), "step 5 names the server: \(banner)")
            }
        }
        expectNoBlock(lab.sshd, "8 doctor runs")
        #expect(penaltyLines(lab.sshd).isEmpty, "no penalty at all: \(lab.sshd.logText().components(separatedBy: "\r\n").filter { $0.contains("exited with status") || $0.contains("penal") }.prefix(6))")

        let warren = try lab.startSupervisor()
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "db comes up", warren)
        let pid = try #require(warren.sshPID("db"))
        kill(pid, SIGKILL)
        let back = try #require(Self.untilEcho(port: lab.localPort), "data passes again after kill -9")
        print("CompatFieldTests: after 8 doctor runs, kill -9 of the tunnel's ssh: data again after \(back)")
        #expect(back < .seconds(5))
        expectNoBlock(lab.sshd, "8 doctor runs and a recovery")
    }

    @Test func fiveTunnelsWithAKeyNotYetAddedComeUpOnOneRetryOnceItIs() async throws {
        let lab = try Self.bastion()
        defer { lab.stop() }
        let names = (1...5).map { "db\($0)" }
        let (config, ports, publicKey) = try lab.tunnelsWithANewKey(names)
        let warren = try lab.startSupervisor(config: config)
        defer { warren.stop() }
        for name in names {
            let failed = warren.waitFor(name) { $0.state == .failed }
            try require(failed?.lastError?.kind == .authFailed, "\(name): auth_failed while the key is not added", warren)
        }
        _ = waitUntil(timeout: .seconds(3)) { Self.count("exited after unsuccessful auth attempt", in: lab.sshd) >= 1 }
        #expect(Self.count("exited after unsuccessful auth attempt", in: lab.sshd) == 1, "one failed login for five tunnels")

        // The bastion's admin adds the key.
        try lab.authorize(publicKey)
        let started = ContinuousClock.now
        let retry = try await CommandRunner.warren(["retry", "--wait", "20", "--config", warren.configPath, "--state-dir", warren.stateDir])
        #expect(retry.status == 0, "\(retry)")
        for (name, port) in zip(names, ports) {
            #expect(warren.waitForState(name, .up, timeout: .seconds(20)), "\(name)")
            #expect(try TCPClient.echo(port: port), "\(name) passes data")
        }
        let took = ContinuousClock.now - started
        print("CompatFieldTests: 5 tunnels up \(took) after `warren retry`, sshd counted 1 failed login")
        #expect(took < .seconds(10))
        expectNoBlock(lab.sshd, "onboarding five tunnels")
    }

    @Test func aBlockWarrenDidNotCauseIsNamedAndWaitedOut() async throws {
        let lab = try Self.bastion(tunnel: "backoff_min = 0.2\nbackoff_max = 2")
        defer { lab.stop() }
        let metricsFile = lab.directory.appending("metrics.prom")
        let warren = try lab.startSupervisor(arguments: ["--metrics-file", metricsFile])
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "db comes up", warren)

        // Six failed logins by hand with another key block the address.
        let stranger = lab.directory.appending("stranger")
        _ = try SSHKeygen.generate(at: stranger)
        for _ in 1...6 {
            _ = try await CommandRunner.run("/usr/bin/ssh", [
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", stranger, "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null", "-p", "\(lab.sshd.port)",
                "\(lab.sshd.user)@127.0.0.1", "true",
            ])
        }
        // `activating ipv4 penalty of 18.602 seconds`: the block ends that long after this line.
        try require(lab.sshd.waitForLog(containing: "activating"), "the address is blocked", warren)
        let seenBlock = ContinuousClock.now
        let line = lab.sshd.logText().components(separatedBy: "activating").last ?? ""
        let seconds = try #require(line.components(separatedBy: "penalty of ").dropFirst().first.flatMap { Double($0.prefix { $0.isNumber || $0 == "." }) })
        let blockEnds = seenBlock + .milliseconds(Int(seconds * 1000))

        // The tunnel's ssh dies; warren's reconnect is refused before the banner.
        kill(try #require(warren.sshPID("db")), SIGKILL)
        let named = try #require(Self.time(warren, "db", timeout: .seconds(10)) { $0.lastError?.kind == .addressBlocked }, "status names the block")
        print("CompatFieldTests: the block named \(named) after the kill")
        #expect(named < .seconds(2))
        let status = try await lab.warren(["status"])
        #expect(status.stdout.contains("address_blocked") && status.stdout.contains("PerSourcePenalties"), "\(status.stdout)")
        let check = try await lab.warren(["check"])
        #expect(check.status == 2 && check.stdout.contains("address_blocked"), "\(check)")
        let (doctor, report) = try await lab.doctor("db")
        #expect(doctor.status == 1 && report.step(5)?.kind == "address_blocked", "\(doctor.stdout)")
        #expect(report.step(5)?.fix?.contains("PerSourcePenaltyExemptList") == true)

        // warren's attempts do not extend the block: up within seconds of its end.
        try require(warren.waitForState("db", .up, timeout: .seconds(120)), "db comes back after the block", warren)
        let late = ContinuousClock.now - blockEnds
        print("CompatFieldTests: the block of \(seconds) s ended; db was up \(late) after its end")
        #expect(late < .seconds(8))
        #expect(try TCPClient.echo(port: lab.localPort))
        let metrics = try String(contentsOfFile: metricsFile, encoding: .utf8)
        #expect(metrics.contains("warren_tunnel_restarts_total{tunnel=\"db\",kind=\"address_blocked\"}"))
    }

    @Test func anIdleTimeoutOnTheBastionIsNamedAndIsNotAFailure() async throws {
        let lab = try Self.bastion(extraConfig: ["UnusedConnectionTimeout 5"], tunnel: "probe_interval = 120")
        defer { lab.stop() }
        let metricsFile = lab.directory.appending("metrics.prom")
        let warren = try lab.startSupervisor(arguments: ["--metrics-file", metricsFile])
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "db comes up", warren)
        let started = ContinuousClock.now
        // Closes come 5-21 s apart (the bastion's timer starts at the last channel's
        // close, and a probe's channel may close late): three fit in 70 s.
        let named = warren.waitFor("db", timeout: .seconds(70)) { $0.idleClose != nil }
        let idle = try #require(named?.idleClose, "status names the idle close: \(warren.logText().split(separator: "\n").filter { $0.contains("tunnel db:") || $0.contains("Transferred") || $0.contains("channel") }.suffix(40).joined(separator: "\n"))")
        print("CompatFieldTests: idle close named after \(ContinuousClock.now - started): \(idle.note)")
        #expect(idle.closes <= 3, "named by the third close at the latest")
        // The bastion's 5 s, from the last channel's close as it sees it (a probe's
        // channel that closes late starts it later): never sooner.
        #expect(idle.afterSeconds >= 4, "at least the bastion's 5 s: \(idle.afterSeconds)")
        #expect(named?.lastError == nil)

        // No client for 30 s more: the tunnel stays `up`, the closes are not failures.
        let failuresBefore = try Self.restartsByFailure(metricsFile)
        var states: Set<TunnelState> = []
        _ = waitUntil(timeout: .seconds(30), every: .milliseconds(50)) {
            if let state = warren.tunnel("db")?.state { states.insert(state) }
            return false
        }
        let later = try #require(warren.tunnel("db"))
        #expect(states.isSubset(of: [.up, .starting, .connecting]) && states.contains(.up), "up, reconnecting: \(states)\n\(warren.logText().split(separator: "\n").filter { $0.contains("tunnel db:") || $0.contains("Transferred") }.suffix(30).joined(separator: "\n"))")
        #expect((later.idleClose?.closes ?? 0) > idle.closes, "more idle closes, each named: \(String(describing: later.idleClose))")
        // A close sooner than the span named first (the timer started earlier) is
        // one more failure at most, then that span is known too.
        #expect(try Self.restartsByFailure(metricsFile) <= failuresBefore + 1, "restarts_total does not grow for idle closes")
        let metrics = try String(contentsOfFile: metricsFile, encoding: .utf8)
        #expect(metrics.contains("warren_tunnel_idle_close_seconds{tunnel=\"db\"}"))

        // A client arriving now, after a minute or more without one, passes data.
        let passed = try #require(Self.untilEcho(port: lab.localPort, timeout: .seconds(3)), "a client after the idle minute passes data")
        print("CompatFieldTests: a client after \(ContinuousClock.now - started) without one passed data after \(passed)")
    }

    /// The sum of `warren_tunnel_restarts_total` for tunnel db, from the metrics file.
    static func restartsByFailure(_ file: String) throws -> Double {
        _ = waitUntil(timeout: .seconds(5)) { FileManager.default.fileExists(atPath: file) }
        let text = try String(contentsOfFile: file, encoding: .utf8)
        return text.split(separator: "\n").filter { $0.hasPrefix("warren_tunnel_restarts_total{tunnel=\"db\"") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }
}
