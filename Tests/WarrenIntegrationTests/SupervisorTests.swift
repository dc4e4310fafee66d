import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// Fails the test with the supervisor's log when a condition does not come.
func require(_ condition: Bool, _ what: String, _ supervisor: WarrenSupervisor, sourceLocation: SourceLocation = #_sourceLocation) throws {
    if !condition {
        Issue.record("\(what)\n--- warren log (tail)\n\(supervisor.logText().split(separator: "\n").suffix(40).joined(separator: "\n"))", sourceLocation: sourceLocation)
        throw FixtureError(what)
    }
}

@Suite(.serialized) struct SupervisorTests {
    @Test func localForwardComesUpAndPassesData() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (warren, port) = try lab.startOneTunnel()
        defer { warren.stop() }
        #expect(try TCPClient.echo(port: port))
        let status = try #require(warren.tunnel("db"))
        #expect(status.pid != nil && status.restarts == 0 && status.lastError == nil)
        #expect(status.forwards == ["L 127.0.0.1:\(port):127.0.0.1:\(lab.target.port)"])
        #expect(warren.status()?.running == true)
        // ssh's debug chatter stays out at the default level; here --log-level debug shows it.
        #expect(warren.logText().contains("tunnel db: connecting -> up"))
    }

    @Test func throughAProxyJumpHop() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let port = try FreePort.find()
        let key = SSHKeygen.keyWithoutComment(lab.sshd.hostKeyLine)
        // The hop is the same sshd: ssh -W through it, then the bastion behind it.
        let config = SupervisorConfig.tunnel("jumped", sshd: lab.sshd, local: ["127.0.0.1:\(port):127.0.0.1:\(lab.target.port)"])
            + "[[tunnels.jumped.jump]]\nhost = \"127.0.0.1\"\nport = \(lab.sshd.port)\nhost_key = \"\(key)\"\n"
        let warren = try lab.startSupervisor(config: config)
        defer { warren.stop() }
        try require(warren.waitForState("jumped", .up), "jumped up", warren)
        #expect(try TCPClient.echo(port: port))
        let log = lab.sshd.logText()
        #expect(log.components(separatedBy: "Accepted publickey").count - 1 >= 2, "two logins: the hop and the bastion")
    }

    @Test func remoteForwardListensOnTheBastion() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let remotePort = try FreePort.find()
        let warren = try lab.startSupervisor(
            config: SupervisorConfig.tunnel("back", sshd: lab.sshd, remote: ["127.0.0.1:\(remotePort):127.0.0.1:\(lab.target.port)"]))
        defer { warren.stop() }
        try require(warren.waitForState("back", .up), "back up", warren)
        // The bastion (this machine's sshd) listens; bytes go back through ssh to the target.
        #expect(try TCPClient.echo(port: remotePort))
    }

    @Test func dynamicForwardIsASocksProxy() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let port = try FreePort.find()
        let warren = try lab.startSupervisor(
            config: SupervisorConfig.tunnel("socks", sshd: lab.sshd, dynamic: ["127.0.0.1:\(port)"]))
        defer { warren.stop() }
        try require(warren.waitForState("socks", .up), "socks up", warren)
        #expect(try Socks5.echo(proxyPort: port, targetPort: lab.target.port))
    }

    @Test func killedChildIsRestartedAndDataFlowsAgain() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (warren, port) = try lab.startOneTunnel()
        defer { warren.stop() }
        let first = try #require(warren.sshPID("db"))
        #expect(kill(first, SIGKILL) == 0)
        let back = warren.waitFor("db") { $0.state == .up && $0.pid != nil && $0.pid != first }
        try require(back?.state == .up, "db up again after kill -9", warren)
        #expect(back?.restarts == 1)
        #expect(try TCPClient.echo(port: port))
    }

    @Test func bastionDroppingTheConnectionReconnects() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (warren, port) = try lab.startOneTunnel()
        defer { warren.stop() }
        let first = warren.sshPID("db")
        lab.sshd.killConnections()
        let back = warren.waitFor("db") { $0.state == .up && $0.pid != first && $0.restarts >= 1 }
        try require(back != nil && back?.state == .up, "reconnected", warren)
        #expect(warren.logText().contains("kind=connection_lost"))
        #expect(try TCPClient.echo(port: port))
    }

    @Test func stoppedBastionBacksOffThenRecoversByItself() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (warren, port) = try lab.startOneTunnel()
        defer { warren.stop() }
        lab.sshd.halt()
        let down = warren.waitFor("db") { $0.lastError?.kind == .connectionRefused && $0.state == .backoff }
        try require(down != nil && down?.state == .backoff, "backoff with connection_refused", warren)
        // The hint names the real values: the bastion's port and the tunnel's key path.
        #expect(down?.lastError?.hint.contains("127.0.0.1 port \(lab.sshd.port)") == true, "\(String(describing: down?.lastError?.hint))")
        #expect(down?.lastError?.hint.contains("tunnels.db") == true)
        #expect(down?.nextRetry != nil)
        // Let the backoff grow past what the watch needs, then bring the bastion back:
        // warren dials it as soon as its port accepts, not when the backoff is over.
        Thread.sleep(forTimeInterval: 2.5)
        try lab.sshd.restart()
        let back = ContinuousClock.now
        try require(warren.waitForState("db", .up), "up again without intervention", warren)
        print("bastion restarted -> tunnel up in \(String(format: "%.2f", (ContinuousClock.now - back).seconds)) s")
        #expect(try TCPClient.echo(port: port))
    }

    @Test func frozenBastionIsDetectedByKeepalivesAndRecovers() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (warren, port) = try lab.startOneTunnel()
        defer {
            lab.sshd.thawConnections()
            warren.stop()
        }
        lab.sshd.freezeConnections()
        let frozenAt = ContinuousClock.now
        // keepalive_interval 1 x (count 2 + 1) = 3 s, plus generous slack.
        let detected = warren.waitFor("db", timeout: .seconds(15)) { $0.lastError?.kind == .keepaliveTimeout }
        let elapsed = ContinuousClock.now - frozenAt
        try require(detected?.lastError?.kind == .keepaliveTimeout, "keepalive_timeout", warren)
        #expect(elapsed < .seconds(3 + 5), "detected after \(elapsed)")
        lab.sshd.thawConnections()
        try require(warren.waitForState("db", .up, timeout: .seconds(30)), "up after SIGCONT", warren)
        #expect(try TCPClient.echo(port: port))
    }
}
