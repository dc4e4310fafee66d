import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// Faults in a row against a real sshd: a tunnel that was up is never
/// punished, and status follows the target. Each test prints its figures;
/// the assertions keep generous limits (speed is `make soak`'s and `make bench`'s).
@Suite(.serialized) struct RecoveryTests {
    /// Kills ssh (or drops the connection on the bastion) `count` times, each
    /// after a second of uptime, and returns the seconds from each fault until
    /// a new ssh is up and data passes again.
    func recoveries(_ count: Int, lab: Lab, warren: WarrenSupervisor, port: Int, fault: (Int32) -> Void) throws -> [Double] {
        var times: [Double] = []
        for round in 1...count {
            Thread.sleep(forTimeInterval: 1)
            let pid = try #require(warren.sshPID("db"), "round \(round): an ssh runs")
            let faulted = ContinuousClock.now
            fault(pid)
            let back = waitUntil(timeout: .seconds(10), every: .milliseconds(5)) {
                guard let now = warren.tunnel("db"), now.state == .up, now.pid != pid else { return false }
                return (try? TCPClient.echo(port: port)) == true
            }
            try require(back, "round \(round): back up", warren)
            times.append((ContinuousClock.now - faulted).seconds)
        }
        return times
    }

    func report(_ what: String, _ times: [Double]) {
        let sorted = times.sorted()
        print("\(what): \(times.map { String(format: "%.0f", $0 * 1000) }.joined(separator: ", ")) ms; median \(String(format: "%.0f", sorted[sorted.count / 2] * 1000)) ms")
    }

    @Test func tenKillsOneSecondApartAreEachRecoveredAtOnce() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (warren, port) = try lab.startOneTunnel()
        defer { warren.stop() }
        let times = try recoveries(10, lab: lab, warren: warren, port: port) { kill($0, SIGKILL) }
        report("10 kills, recovery", times)
        #expect(times.allSatisfy { $0 < 3 }, "each recovery well under the old backoff's 1-13 s: \(times)")
        #expect(warren.tunnel("db")?.restarts == 10)
        #expect(!warren.logText().contains("-> backoff"), "a tunnel that was up never waits in backoff")
    }

    @Test func fiveDropsInARowByTheBastionAreEachRecoveredAtOnce() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (warren, port) = try lab.startOneTunnel()
        defer { warren.stop() }
        let times = try recoveries(5, lab: lab, warren: warren, port: port) { _ in lab.sshd.killConnections() }
        report("5 drops, recovery", times)
        #expect(times.allSatisfy { $0 < 3 }, "\(times)")
        #expect(!warren.logText().contains("-> backoff"))
        let lost = warren.logText().split(separator: "\n").filter { $0.contains("up -> starting") && $0.contains("kind=connection_lost") }
        #expect(lost.count == 5, "each drop is logged with why the run ended")
    }

    @Test func statusFollowsTheTargetDownAndBackWithinSeconds() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let local = try lab.forward()
        // probe_interval is long: only the degraded cadence can bring `up` back quickly.
        let config = SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec])
            .replacingOccurrences(of: "probe_interval = 1\n", with: "probe_interval = 300\n")
        let warren = try lab.startSupervisor(config: config)
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "up", warren)
        lab.target.stop()
        _ = try? TCPClient.echo(port: local.port)  // a client meets the dead target
        let degraded = warren.waitFor("db") { $0.state == .degraded }
        try require(degraded?.lastError?.kind == .targetUnreachable, "degraded", warren)
        var returns: [Double] = []
        for _ in 1...3 {
            try lab.target.start()
            let back = ContinuousClock.now
            let up = warren.waitFor("db", timeout: .seconds(10)) { $0.state == .up }
            try require(up?.lastError == nil, "up again with no error", warren)
            returns.append((ContinuousClock.now - back).seconds)
            lab.target.stop()
            _ = try? TCPClient.echo(port: local.port)
            try require(warren.waitForState("db", .degraded), "degraded again", warren)
        }
        report("target back -> status up", returns)
        #expect(returns.allSatisfy { $0 < 3 }, "within about a second of the target's return: \(returns)")
        #expect(warren.tunnel("db")?.restarts == 0, "the ssh connection itself stayed")
    }
}

/// Text a server sends is data: a banner never drives state.
@Suite(.serialized) struct ServerTextTests {
    static let imitation = """
        debug1: Entering interactive session.
        debug1: Entering interactive session.
        debug1: forwarding_success: all expected forwarding replies received
        channel 3: open failed: connect failed: Connection refused
        @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
        @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
        Host key for 127.0.0.1 has changed and you have requested strict checking.
        Host key verification failed.
        ssh: connect to host 10.0.0.1 port 22: Connection timed out
        \u{1B}[2J\u{1B}[Hall tunnels up

        """

    /// Tunnel `db` to the lab's bastion with a key the bastion does not know.
    static func strangerConfig(_ lab: Lab) throws -> String {
        let local = try lab.forward()
        let stranger = lab.directory.appending("stranger")
        try SSHKeygen.generate(at: stranger)
        return SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec])
            .replacingOccurrences(of: "identity_file = \"\(lab.sshd.clientKeyPath)\"", with: "identity_file = \"\(stranger)\"")
    }

    /// A lab whose sshd shows `banner` before login.
    func bannerLab(_ banner: String) throws -> Lab {
        let lab = try Lab(sshd: nil)
        do {
            let path = try lab.makeDirectory(prefix: "wbanner-").write(banner, to: "banner")
            chmod(path, 0o644)
            var options = SSHDServer.Options()
            options.extraConfig.append("Banner \(path)")
            try lab.startSSHD(options)
            try lab.startTarget()
            return lab
        } catch {
            lab.stop()
            throw error
        }
    }

    @Test func aBannerImitatingSshNeitherMakesATunnelUpNorNamesItsFailure() throws {
        let lab = try bannerLab(Self.imitation)
        defer { lab.stop() }
        // A key the bastion does not know: the login fails after the banner.
        let config = try ServerTextTests.strangerConfig(lab)
        let warren = try lab.startSupervisor(config: config)
        defer { warren.stop() }
        let failed = warren.waitFor("db") { $0.state == .failed }
        try require(failed?.lastError?.kind == .authFailed, "failed with auth_failed, not what the banner says", warren)
        #expect(failed?.lastError?.message.contains("Permission denied") == true)
        let log = warren.logText()
        #expect(!log.contains("-> up") && !log.contains("-> connecting -> up"), "never up before login")
        #expect(log.contains("the server says: debug1: Entering interactive session."), "the banner is kept as data")
        #expect(!log.contains("\u{1B}["), "no terminal escape reaches the log")
    }

    @Test func aBannerImitatingFailuresDoesNotDegradeAWorkingTunnel() throws {
        let lab = try bannerLab(Self.imitation)
        defer { lab.stop() }
        let (warren, port) = try lab.startOneTunnel()
        defer { warren.stop() }
        #expect(try TCPClient.echo(port: port))
        Thread.sleep(forTimeInterval: 0.5)
        let status = try #require(warren.tunnel("db"))
        #expect(status.state == .up && status.lastError == nil, "\(status)")
    }

    @Test func a150kBBannerLineNeitherHangsWarrenNorLosesTheChild() throws {
        let lab = try bannerLab(String(repeating: "x", count: 150_000) + "\n")
        defer { lab.stop() }
        let (warren, port) = try lab.startOneTunnel()
        #expect(try TCPClient.echo(port: port))
        let pid = try #require(warren.sshPID("db"))
        warren.process.signal(SIGTERM)
        let ended = warren.process.waitForTermination(timeout: .seconds(10))
        #expect(ended == .exited(0), "warren stops on SIGTERM")
        #expect(!isLiveProcess(pid), "and its ssh with it")
        #expect(warren.logText().contains(LineSplitter.cutMarker), "the line was cut, not fatal")
    }
}

/// doctor and check read ssh's log apart from the server's text too.
@Suite(.serialized) struct OneShotServerTextTests {
    @Test func doctorShowsTheBannerAsDataAndJudgesOnlySshsLog() async throws {
        let lab = try ServerTextTests().bannerLab(ServerTextTests.imitation)
        defer { lab.stop() }
        let config = try ServerTextTests.strangerConfig(lab)
        let path = try lab.directory.write(config, to: "warren.toml")
        let doctor = try await CommandRunner.warren(["doctor", "db", "--config", path, "--state-dir", lab.stateDir, "--json"])
        #expect(doctor.status == 1)
        #expect(doctor.stdout.contains("auth_failed"), "\(doctor.stdout)")
        #expect(!doctor.stdout.contains("host_key_changed"), "the banner's imitation is not a diagnosis")
        #expect(doctor.stdout.contains("the server's banner: debug1: Entering interactive session."), "shown as data")
        #expect(!doctor.stdout.contains("\u{1B}"), "no escape sequence reaches the terminal")
    }
}
