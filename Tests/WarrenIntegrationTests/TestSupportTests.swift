import Foundation
import Testing
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Proves the fixtures with the real OpenSSH client: what they start works,
/// and what they start is gone afterwards — not even left as a zombie.
@Suite(.serialized)
struct TestSupportTests {
    /// An `ssh -N -L` child forwarding a free local port to a target through an sshd.
    struct Forward {
        let ssh: SpawnedProcess
        let localPort: Int
    }

    func startForward(through sshd: SSHDServer, to targetPort: Int, in dir: TemporaryDirectory,
                      extraLines: [String] = []) throws -> Forward {
        let config = try sshd.writeClientConfig(in: dir, extraLines: extraLines)
        let localPort = try FreePort.find()
        let ssh = try SpawnedProcess.spawn("/usr/bin/ssh", [
            "-F", config, "-N", "-L", "127.0.0.1:\(localPort):127.0.0.1:\(targetPort)", "bastion",
        ], log: dir.appending("ssh-\(localPort).log"))
        let up = waitUntil(timeout: .seconds(10)) { FreePort.isListening(localPort) || !ssh.isAlive }
        guard up, ssh.isAlive else {
            ssh.terminate()
            throw FixtureError("ssh did not forward 127.0.0.1:\(localPort); its log:\n\(ssh.logText())\nsshd's log:\n\(sshd.logText())")
        }
        return Forward(ssh: ssh, localPort: localPort)
    }

    /// Every pid is gone from /proc: exited and reaped by its parent.
    func expectGone(_ pids: [pid_t], sourceLocation: SourceLocation = #_sourceLocation) {
        for pid in pids {
            #expect(!ProcessTable.exists(pid), "pid \(pid) still exists: \(String(describing: ProcessTable.entry(pid)))",
                    sourceLocation: sourceLocation)
        }
    }

    func millis(since start: ContinuousClock.Instant) -> Int {
        Int((ContinuousClock.now - start) / .milliseconds(1))
    }

    @Test func sshdListensAndStopsWithoutTrace() throws {
        let started = ContinuousClock.now
        let sshd = try SSHDServer.start()
        print("sshd ready \(millis(since: started)) ms after start() (keygen x2, sshd -t, spawn)")
        let pid = try #require(sshd.listenerPID)
        #expect(FreePort.isListening(sshd.port))
        #expect(sshd.hostKeyLine.hasPrefix("ssh-ed25519 AAAA"))
        #expect(sshd.knownHostsLine == "[127.0.0.1]:\(sshd.port) \(sshd.hostKeyLine)")
        #expect(sshd.clientPublicKey.hasPrefix("ssh-ed25519 "))
        #expect(sshd.logText().contains("Server listening on 127.0.0.1 port \(sshd.port)."))
        var mode = stat()
        #expect(stat(sshd.hostKeyPath, &mode) == 0 && mode.st_mode & 0o777 == 0o600)
        #expect(ProcessTable.processes(withCmdlineContaining: sshd.configPath).map(\.pid) == [pid])

        sshd.stop()
        expectGone([pid])
        #expect(!FreePort.isListening(sshd.port))
        #expect(!FileManager.default.fileExists(atPath: sshd.directory.path))
        sshd.stop()  // twice is fine
    }

    @Test func forwardCarriesBytesAndDiesWithItsConnection() throws {
        let dir = try TemporaryDirectory(prefix: "fw-")
        defer { dir.remove() }
        let sshd = try SSHDServer.start()
        defer { sshd.stop() }
        let target = try TCPTarget.start()
        defer { target.stop() }

        let spawned = ContinuousClock.now
        let forward = try startForward(through: sshd, to: target.port, in: dir)
        defer { forward.ssh.terminate() }
        print("ssh -L listening \(millis(since: spawned)) ms after spawn")
        #expect(try TCPClient.echo(port: forward.localPort, payload: "hello through the bastion\n"))
        #expect(target.acceptedConnections == 1)
        #expect(target.bytesReceived == "hello through the bastion\n".utf8.count)

        let connections = sshd.connectionProcesses.map(\.pid)
        #expect(!connections.isEmpty)
        // DEBUG1 names each per-connection child, so a test can tell them apart.
        for entry in sshd.connectionProcesses where entry.parent == sshd.listenerPID {
            #expect(sshd.logText().contains("debug1: Forked child \(entry.pid)."))
        }
        let killed = ContinuousClock.now
        sshd.killConnections()
        let status = forward.ssh.waitForExit(timeout: .seconds(5))
        print("ssh exited \(millis(since: killed)) ms after killConnections(), status \(String(describing: status))")
        #expect(status == 255)
        // FIN or RST, as the kernel closes the killed session's socket: with
        // unread data in it (a keepalive under load) the client sees a reset.
        let said = forward.ssh.logText()
        #expect(said.contains("Connection to 127.0.0.1 closed by remote host.") || said.contains("client_loop: send disconnect: Broken pipe"), "\(said)")
        expectGone(connections + [forward.ssh.pid])
        #expect(sshd.isRunning, "killConnections leaves the listener up")
        #expect(sshd.connectionProcesses.isEmpty)
    }

    @Test func targetStopRefusesAndStartServesAgain() throws {
        let dir = try TemporaryDirectory(prefix: "tg-")
        defer { dir.remove() }
        let sshd = try SSHDServer.start()
        defer { sshd.stop() }
        let target = try TCPTarget.start()
        defer { target.stop() }
        let forward = try startForward(through: sshd, to: target.port, in: dir)
        defer { forward.ssh.terminate() }
        #expect(try TCPClient.echo(port: forward.localPort))

        target.stop()
        #expect(!target.isListening)
        #expect(throws: FixtureError.self) { try TCPClient.echo(port: target.port) }
        let before = target.bytesReceived
        // Through the forward the local connect succeeds, then is closed.
        #expect(try TCPClient.echo(port: forward.localPort) == false)
        #expect(target.bytesReceived == before, "no byte reached the stopped target")
        #expect(waitUntil(timeout: .seconds(2)) {
            forward.ssh.logText().contains("open failed: connect failed: Connection refused")
        })
        #expect(forward.ssh.isAlive, "ssh stays up when the target is down")

        try target.start()
        #expect(try TCPClient.echo(port: forward.localPort))
        #expect(target.acceptedConnections == 2)
    }

    @Test func restartKeepsPortAndRotationBreaksThePin() throws {
        let dir = try TemporaryDirectory(prefix: "rk-")
        defer { dir.remove() }
        let sshd = try SSHDServer.start()
        defer { sshd.stop() }
        let target = try TCPTarget.start()
        defer { target.stop() }
        let first = try #require(sshd.listenerPID)

        try sshd.restart()
        expectGone([first])
        #expect(sshd.listenerPID != first)
        #expect(FreePort.isListening(sshd.port))
        let forward = try startForward(through: sshd, to: target.port, in: dir)
        defer { forward.ssh.terminate() }
        #expect(try TCPClient.echo(port: forward.localPort))

        let oldKey = sshd.hostKeyLine
        let connections = sshd.connectionProcesses.map(\.pid)
        let newKey = try sshd.rotateHostKey()
        #expect(newKey != oldKey && sshd.hostKeyLine == newKey)
        #expect(forward.ssh.waitForExit(timeout: .seconds(5)) == 255, "rotation drops the connection")
        expectGone(connections + [forward.ssh.pid])

        // A fresh client that still pins the old key is refused.
        let config = try sshd.writeClientConfig(in: dir)
        try "[127.0.0.1]:\(sshd.port) \(oldKey)\n".write(toFile: dir.appending("known_hosts"), atomically: true, encoding: .utf8)
        let probe = try SpawnedProcess.run("/usr/bin/ssh", ["-F", config, "-N", "bastion"],
                                           log: dir.appending("ssh-old-pin.log"), timeout: .seconds(10))
        #expect(probe.status == 255)
        #expect(probe.output.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"))
        #expect(probe.output.contains("Host key verification failed."))
    }

    @Test func frozenBastionTimesOutKeepalivesAndThaws() throws {
        let dir = try TemporaryDirectory(prefix: "fz-")
        defer { dir.remove() }
        let sshd = try SSHDServer.start()
        defer { sshd.stop() }
        let target = try TCPTarget.start()
        defer { target.stop() }
        let forward = try startForward(through: sshd, to: target.port, in: dir,
                                       extraLines: ["ServerAliveInterval 1", "ServerAliveCountMax 2"])
        defer { forward.ssh.terminate() }
        let connections = sshd.connectionProcesses

        sshd.freezeConnections()
        #expect(sshd.isFrozen)
        for entry in connections + [ProcessTable.entry(try #require(sshd.listenerPID))!] {
            #expect(ProcessTable.entry(entry.pid)?.state == "T")
        }
        let frozen = ContinuousClock.now
        let status = forward.ssh.waitForExit(timeout: .seconds(10))
        print("ssh (ServerAlive 1 s x 2) exited \(millis(since: frozen)) ms after freeze, status \(String(describing: status))")
        #expect(status == 255)
        #expect(forward.ssh.logText().contains("Timeout, server 127.0.0.1 not responding."))

        sshd.thawConnections()
        #expect(!sshd.isFrozen)
        let again = try startForward(through: sshd, to: target.port, in: dir)
        defer { again.ssh.terminate() }
        #expect(try TCPClient.echo(port: again.localPort))
        again.ssh.terminate()
        sshd.stop()
        expectGone(connections.map(\.pid))
    }

    @Test func stopWhileFrozenStillCleansUp() throws {
        let dir = try TemporaryDirectory(prefix: "sf-")
        defer { dir.remove() }
        let sshd = try SSHDServer.start()
        let target = try TCPTarget.start()
        defer { target.stop() }
        let forward = try startForward(through: sshd, to: target.port, in: dir)
        defer { forward.ssh.terminate() }
        let pids = [try #require(sshd.listenerPID)] + sshd.connectionProcesses.map(\.pid)
        sshd.freezeConnections()
        sshd.stop()
        expectGone(pids)
    }

    @Test func strictModesAcceptsASafeChainAndRefusesTmp() throws {
        let dir = try TemporaryDirectory(prefix: "sm-")
        defer { dir.remove() }
        let target = try TCPTarget.start()
        defer { target.stop() }

        let safe = try SSHDServer.start(.strict())
        defer { safe.stop() }
        #expect(safe.directory.path.hasPrefix(SSHDServer.secureParentDirectory + "/"))
        let forward = try startForward(through: safe, to: target.port, in: dir)
        defer { forward.ssh.terminate() }
        #expect(try TCPClient.echo(port: forward.localPort))

        var options = SSHDServer.Options()
        options.strictModes = true
        let unsafe = try SSHDServer.start(options)
        defer { unsafe.stop() }
        let config = try unsafe.writeClientConfig(in: dir)
        let probe = try SpawnedProcess.run("/usr/bin/ssh", ["-F", config, "-N", "bastion"],
                                           log: dir.appending("ssh-strict.log"), timeout: .seconds(10))
        #expect(probe.status == 255)
        #expect(probe.output.contains("Permission denied (publickey)."))
        #expect(unsafe.waitForLog(containing: "bad ownership or modes for directory /tmp"))
    }

    @Test func authorizedKeyOptionsAreApplied() throws {
        let dir = try TemporaryDirectory(prefix: "ak-")
        defer { dir.remove() }
        let allowed = try TCPTarget.start()
        defer { allowed.stop() }
        let other = try TCPTarget.start()
        defer { other.stop() }
        let sshd = try SSHDServer.start(.init(
            authorizedKeyOptions: "restrict,port-forwarding,permitopen=\"127.0.0.1:\(allowed.port)\""))
        defer { sshd.stop() }
        let ok = try startForward(through: sshd, to: allowed.port, in: dir)
        defer { ok.ssh.terminate() }
        #expect(try TCPClient.echo(port: ok.localPort))

        let denied = try startForward(through: sshd, to: other.port, in: dir)
        defer { denied.ssh.terminate() }
        let asked = ContinuousClock.now
        #expect(try TCPClient.echo(port: denied.localPort) == false)
        print("echo through a forbidden forward failed after \(millis(since: asked)) ms")
        #expect(other.acceptedConnections == 0)
        #expect(waitUntil(timeout: .seconds(2)) {
            denied.ssh.logText().contains("administratively prohibited")
        })
    }

    @Test func missingSSHDThrowsWithTheInstallCommand() throws {
        var options = SSHDServer.Options()
        options.sshdPath = "/nonexistent/sshd"
        do {
            _ = try SSHDServer.start(options)
            Issue.record("start() must throw when sshd is missing")
        } catch let error as FixtureError {
            #expect(error.message.contains("openssh-server is not installed: apt-get install -y openssh-server"))
        }
    }

    @Test func withSSHDStopsEvenWhenTheBodyThrows() async throws {
        struct Boom: Error {}
        var seen: pid_t?
        await #expect(throws: Boom.self) {
            try await withSSHD { sshd in
                seen = sshd.listenerPID
                throw Boom()
            }
        }
        expectGone([try #require(seen)])
    }

    @Test func spawnedChildHasCleanSignalsAndNoInheritedDescriptors() async throws {
        let dir = try TemporaryDirectory(prefix: "sp-")
        defer { dir.remove() }
        // Spawned after an await, on whatever pool thread runs this.
        try await Task.sleep(for: .milliseconds(1))
        let child = try SpawnedProcess.spawn("/bin/sleep", ["30"], log: dir.appending("sleep.log"))
        defer { child.terminate() }
        #expect(child.isAlive)
        // Until setpriv has exec'd sleep, /proc shows setpriv's own descriptors.
        #expect(waitUntil(timeout: .seconds(5)) { ProcessTable.cmdline(child.pid) == "/bin/sleep 30" })
        let status = try String(contentsOfFile: "/proc/\(child.pid)/status", encoding: .utf8)
        #expect(status.contains("SigBlk:\t0000000000000000"))
        // glibc's posix_spawn ignores its two internal signals (32, 33) in the
        // child on purpose, and a glibc program re-arms them at start: allow those.
        let ignored = status.split(separator: "\n").first { $0.hasPrefix("SigIgn:") }
            .flatMap { UInt64($0.dropFirst("SigIgn:".count).trimmingCharacters(in: .whitespaces), radix: 16) }
        #expect(ignored.map { $0 & ~0x1_8000_0000 } == 0, "no ordinary signal is ignored")
        // sleep may hold a descriptor for a moment while it starts (the locale
        // files): wait for it to settle; an inherited descriptor would stay.
        var fds: [String] = []
        _ = waitUntil(timeout: .seconds(5)) {
            fds = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(child.pid)/fd")) ?? []).sorted()
            return fds == ["0", "1", "2"]
        }
        #expect(fds == ["0", "1", "2"])

        let term = ContinuousClock.now
        let ended = child.terminate(grace: .seconds(5))
        #expect(ended == .signaled(SIGTERM), "SIGTERM alone ends it: not blocked")
        #expect(millis(since: term) < 1000)
        #expect(!child.isAlive)
        #expect(!child.signal(SIGKILL), "a reaped child is never signalled")
        expectGone([child.pid])
    }

    @Test func processTableSeesZombiesUntilReaped() throws {
        let dir = try TemporaryDirectory(prefix: "pt-")
        defer { dir.remove() }
        let child = try SpawnedProcess.spawn("/bin/sh", ["-c", "exit 3"], log: dir.appending("sh.log"))
        #expect(waitUntil(timeout: .seconds(5)) { ProcessTable.isZombie(child.pid) })
        #expect(ProcessTable.childrenOf(getpid()).contains(child.pid))
        #expect(!child.isAlive)  // reaps it
        #expect(child.termination == .exited(3))
        #expect(child.waitForExit(timeout: .zero) == 3)
        expectGone([child.pid])
    }

    @Test func targetCountsAndRefusesWhenStopped() throws {
        let target = try TCPTarget.start()
        defer { target.stop() }
        #expect(FreePort.isListening(target.port))
        #expect(try TCPClient.echo(port: target.port, payload: [UInt8](repeating: 7, count: 200_000)))
        #expect(target.bytesReceived == 200_000 && target.bytesSent == 200_000)
        target.stop()
        #expect(!TCPClient.canConnect(port: target.port))
        #expect(!FreePort.isListening(target.port))
        try target.start()
        #expect(TCPClient.canConnect(port: target.port))
        #expect(waitUntil(timeout: .seconds(1)) { target.acceptedConnections == 2 })

        let silent = try TCPTarget.start(behavior: .silent)
        defer { silent.stop() }
        #expect(try TCPClient.echo(port: silent.port, payload: "x", timeout: .milliseconds(300)) == false)
        #expect(silent.bytesReceived == 1)
    }
}
