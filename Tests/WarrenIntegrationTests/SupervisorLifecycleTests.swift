import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// Process hygiene, signals, reload and scale.
@Suite(.serialized) struct SupervisorLifecycleTests {
    /// `warren run` with two tunnels through the lab's sshd, both up; their local ports.
    func startTwo(_ first: String, _ second: String, in lab: Lab) throws -> (WarrenSupervisor, ports: [Int]) {
        let a = try lab.forward(), b = try lab.forward()
        let warren = try lab.startSupervisor(
            config: lab.config(
                SupervisorConfig.tunnel(first, sshd: lab.sshd, local: [a.spec]),
                SupervisorConfig.tunnel(second, sshd: lab.sshd, local: [b.spec])))
        try require(warren.waitForState(first, .up) && warren.waitForState(second, .up), "\(first) and \(second) up", warren)
        return (warren, [a.port, b.port])
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func stopSignalStopsEveryChildAndWritesTheFinalStatus(_ signal: Int32) throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (warren, ports) = try startTwo("a", "b", in: lab)
        defer { warren.stop() }
        let children = [warren.sshPID("a"), warren.sshPID("b")].compactMap { $0 }
        #expect(children.count == 2)
        warren.process.signal(signal)
        let termination = warren.process.waitForTermination(timeout: .seconds(15))
        #expect(termination == .exited(0), "\(warren.logText())")
        for pid in children { #expect(!isLiveProcess(pid), "ssh \(pid) stopped") }
        let final = try #require(warren.status())
        #expect(final.running == false)
        #expect(final.tunnels.allSatisfy { $0.state == .stopped && $0.pid == nil })
        #expect(ports.allSatisfy { !FreePort.isListening($0) })
    }

    @Test func sigkilledSupervisorTakesItsChildrenAlongAndANewOneStartsCleanly() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let a = try lab.forward()
        let jumpKey = SSHKeygen.keyWithoutComment(lab.sshd.hostKeyLine)
        let b = try lab.forward()
        let config = lab.config(
            SupervisorConfig.tunnel("a", sshd: lab.sshd, local: [a.spec]),
            SupervisorConfig.tunnel("b", sshd: lab.sshd, local: [b.spec])
                + "[[tunnels.b.jump]]\nhost = \"127.0.0.1\"\nport = \(lab.sshd.port)\nhost_key = \"\(jumpKey)\"\n")
        let warren = try lab.startSupervisor(config: config)
        defer { warren.stop() }
        try require(warren.waitForState("a", .up) && warren.waitForState("b", .up), "both up", warren)
        let children = ProcessTable.descendants(of: warren.process.pid).filter { $0.name == "ssh" }.map(\.pid)
        #expect(children.count >= 3, "two ssh children and the ProxyJump helper: \(children)")

        warren.kill()
        let gone = waitUntil(timeout: .seconds(2)) { children.allSatisfy { !isLiveProcess($0) } }
        #expect(gone, "ssh children alive 2 s after the supervisor's SIGKILL: \(children.filter(isLiveProcess))")

        let second = try lab.startSupervisor(name: "second")
        defer { second.stop() }
        try require(second.waitFor("a") { $0.state == .up && $0.pid.map { !children.contains($0) } == true }?.state == .up, "a up under the new supervisor", second)
        try require(second.waitFor("b") { $0.state == .up && $0.pid.map { !children.contains($0) } == true }?.state == .up, "b up under the new supervisor", second)
        #expect(try TCPClient.echo(port: a.port))
        #expect(try TCPClient.echo(port: b.port))
    }

    /// `relative`: the stale ssh was started by hand from the state directory with `-F tunnels/a/ssh_config`.
    @Test(arguments: [false, true])
    func staleChildOfAnEarlierSupervisorIsStoppedBeforeItsPortIsBound(relative: Bool) throws {
        let lab = try Lab()
        defer { lab.stop() }
        let a = try lab.forward()
        let warren = try lab.startSupervisor(config: SupervisorConfig.tunnel("a", sshd: lab.sshd, local: [a.spec]))
        try require(warren.waitForState("a", .up), "a up", warren)
        warren.stop()
        // An ssh on warren's own files that no supervisor owns (as if PDEATHSIG had
        // not been armed yet when the old supervisor died): logged in, a master
        // on the tunnel's control socket (warren, not ssh, holds the port now).
        let sshConfig = "\(warren.stateDir)/tunnels/a/ssh_config"
        let stale = relative
            ? try lab.spawn(
                "/bin/sh", ["-c", "cd \"$0\" && exec /usr/bin/ssh -F tunnels/a/ssh_config -N warren-a", warren.stateDir], log: "stale.log")
            : try lab.spawn("/usr/bin/ssh", ["-F", sshConfig, "-N", "warren-a"], log: "stale.log")
        defer { stale.terminate() }
        let tunnelDirectory = "\(warren.stateDir)/tunnels/a"
        #expect(waitUntil(timeout: .seconds(10)) {
            ((try? FileManager.default.contentsOfDirectory(atPath: tunnelDirectory)) ?? []).contains { $0.hasPrefix("control.") }
        }, "the stale ssh is up, listening on the control socket")
        #expect(!FreePort.isListening(a.port), "the port was warren's, closed when it stopped")

        let second = try lab.startSupervisor(name: "second")
        defer { second.stop() }
        try require(second.waitFor("a") { $0.state == .up && second.status()?.supervisorPid == second.process.pid }?.state == .up, "a up after stopping the stale child", second)
        #expect(stale.waitForTermination(timeout: .seconds(5)) != nil, "the stale ssh was stopped")
        #expect(second.logText().contains("stopped a stale ssh"))
        #expect(second.tunnel("a")?.restarts == 0, "no port clash on the way up")
    }

    @Test func secondSupervisorOnTheSameStateDirNamesTheHolder() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let a = try lab.forward()
        let warren = try lab.startSupervisor(config: SupervisorConfig.tunnel("a", sshd: lab.sshd, local: [a.spec]))
        defer { warren.stop() }
        try require(warren.waitForState("a", .up), "a up", warren)
        let second = try await CommandRunner.warren(["run", "--config", warren.configPath, "--state-dir", warren.stateDir])
        #expect(second.status == 1)
        #expect(second.stderr.contains("warren (pid \(warren.process.pid)) is already supervising"), "\(second)")
        #expect(warren.tunnel("a")?.state == .up)
    }

    @Test func invalidConfigAtStartExits78() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let path = try lab.directory.write("[tunnels.x]\nhost = \"-bad\"\n", to: "bad.toml")
        let result = try await CommandRunner.warren(["run", "--config", path, "--state-dir", lab.stateDir])
        #expect(result.status == 78)
        #expect(result.stderr.contains("tunnels.x.host"))
    }

    @Test func sighupRestartsOnlyTheChangedTunnel() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let a = try lab.forward(), b = try lab.forward(), c = try lab.forward(), d = try lab.forward()
        let tunnels = [("a", a), ("b", b), ("c", c)]
        let config = lab.config(tunnels.map { SupervisorConfig.tunnel($0.0, sshd: lab.sshd, local: [$0.1.spec]) }.joined(separator: "\n"))
        let warren = try lab.startSupervisor(config: config)
        defer { warren.stop() }
        for (name, _) in tunnels { try require(warren.waitForState(name, .up), "\(name) up", warren) }
        let before = Dictionary(uniqueKeysWithValues: tunnels.map { ($0.0, warren.sshPID($0.0)) })

        // b gets a second forward; c is removed; e is added.
        let changed = lab.config(
            SupervisorConfig.tunnel("a", sshd: lab.sshd, local: [a.spec]),
            SupervisorConfig.tunnel("b", sshd: lab.sshd, local: [b.spec, d.spec]),
            SupervisorConfig.tunnel("e", sshd: lab.sshd, local: [c.spec]))
        try warren.reload(with: changed)
        try require(warren.waitFor("b") { $0.state == .up && $0.pid != before["b"]! }?.state == .up, "b restarted", warren)
        try require(warren.waitForState("e", .up), "e added", warren)
        #expect(warren.sshPID("a") == before["a"]!, "a kept its ssh process")
        #expect(warren.tunnel("c") == nil, "c removed")
        #expect(!isLiveProcess(before["c"]!!), "c's ssh stopped")
        #expect(try TCPClient.echo(port: d.port), "b's new forward works")
        #expect(try TCPClient.echo(port: a.port))

        // An open connection through an unchanged tunnel survives a reload.
        let fd = try TCPClient.connect(port: a.port)
        defer { close(fd) }
        try warren.reload(with: changed + "\n# comment only\n")
        #expect(waitUntil(timeout: .seconds(10)) { warren.logText().components(separatedBy: "reloaded:").count == 3 })
        #expect(warren.sshPID("a") == before["a"]!)
        let payload = Array("still here\n".utf8)
        #expect(payload.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == payload.count)
        var buffer = [UInt8](repeating: 0, count: payload.count)
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&pfd, 1, 5000) == 1)
        #expect(read(fd, &buffer, buffer.count) == payload.count && buffer == payload)
    }

    @Test func invalidConfigOnSighupKeepsEverythingRunning() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let a = try lab.forward()
        let warren = try lab.startSupervisor(config: SupervisorConfig.tunnel("a", sshd: lab.sshd, local: [a.spec]))
        defer { warren.stop() }
        try require(warren.waitForState("a", .up), "a up", warren)
        let pid = warren.sshPID("a")
        try warren.reload(with: "[tunnels.a]\nhost = \"\"\nport = 99999\n")
        #expect(waitUntil(timeout: .seconds(10)) { warren.logText().contains("the new config is invalid; keeping the running one") })
        #expect(warren.logText().contains("tunnels.a.port"), "the log says why")
        #expect(warren.sshPID("a") == pid)
        #expect(warren.tunnel("a")?.state == .up)
        #expect(try TCPClient.echo(port: a.port))
    }

    @Test func fiftyTunnelsToOneBastionWithDefaultMaxStartupsAllComeUp() throws {
        let lab = try Lab(sshd: SSHDServer.Options(logLevel: .verbose))
        defer { lab.stop() }
        var ports: [Int] = []
        var text = ""
        for i in 0..<50 {
            let port = try FreePort.find()
            ports.append(port)
            text += SupervisorConfig.tunnel(String(format: "t%02d", i), sshd: lab.sshd, local: ["127.0.0.1:\(port):127.0.0.1:\(lab.target.port)"]) + "\n"
        }
        let warren = try lab.startSupervisor(config: text)
        defer { warren.stop() }
        let allUp = waitUntil(timeout: .seconds(90), every: .milliseconds(100)) {
            (warren.status()?.tunnels.filter { $0.state == .up }.count ?? 0) == 50
        }
        try require(allUp, "50 up; states: \(warren.status()?.tunnels.map { "\($0.name)=\($0.state.rawValue)" } ?? [])", warren)
        #expect(warren.status()?.tunnels.allSatisfy { $0.restarts == 0 } == true, "no start was refused by MaxStartups")
        #expect(!lab.sshd.logText().contains("drop connection"), "sshd dropped none for MaxStartups")
        for port in ports.prefix(5) + ports.suffix(5) { #expect(try TCPClient.echo(port: port)) }
    }

    @Test func childrenAreNotKilledByTheOrphanMechanismInANormalRun() throws {
        // PDEATHSIG fires when the *thread* that spawned the child exits; warren
        // spawns every child from its one long-lived reactor thread. Churn the
        // supervisor's thread pool (probes and status writes every second,
        // restarts of another tunnel) for more than 10 s, and check the first
        // child is the same process.
        let lab = try Lab()
        defer { lab.stop() }
        let (warren, _) = try startTwo("steady", "churn", in: lab)
        defer { warren.stop() }
        let steady = try #require(warren.sshPID("steady"))
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(12) {
            if let pid = warren.sshPID("churn") { kill(pid, SIGKILL) }
            _ = warren.waitFor("churn", timeout: .seconds(5)) { $0.state == .up }
            Thread.sleep(forTimeInterval: 0.5)
        }
        #expect(warren.sshPID("steady") == steady && isLiveProcess(steady), "the steady child lived through the churn")
        // Every child warren started and lost was reaped: none lingers as a zombie.
        Thread.sleep(forTimeInterval: 0.5)
        let zombies = ProcessTable.descendants(of: warren.process.pid).filter(\.isZombie)
        #expect(zombies.isEmpty, "zombies under warren: \(zombies)")
        #expect(warren.tunnel("steady")?.restarts == 0)
        #expect((warren.tunnel("churn")?.restarts ?? 0) >= 5)
    }
}

/// Whether the process exists and is not a zombie.
func isLiveProcess(_ pid: Int32) -> Bool {
    ProcessTable.entry(pid).map { !$0.isZombie } ?? false
}

/// A thousand tunnels need about three thousand descriptors; a service often
/// starts with a soft limit of 1024 (systemd's default).
@Suite(.serialized) struct OpenFileLimitTests {
    @Test func runRaisesItsSoftOpenFileLimitToTheHardOne() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let local = try lab.forward()
        let config = try lab.directory.write(SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec]), to: "warren.toml")
        // prlimit execs warren with soft 1024, hard 8192: the pid is warren's.
        let process = try lab.spawn(
            "/usr/bin/prlimit", ["--nofile=1024:8192", CommandRunner.warrenBinary, "run", "--config", config, "--state-dir", lab.stateDir],
            log: "warren.log")
        defer { _ = process.terminate() }
        var limits = ""
        let raised = waitUntil(timeout: .seconds(10)) {
            limits = (try? String(contentsOfFile: "/proc/\(process.pid)/limits", encoding: .utf8)) ?? ""
            return limits.split(separator: "\n").contains { $0.hasPrefix("Max open files") && $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first == "8192" }
        }
        #expect(raised, "\(limits)")
    }
}
