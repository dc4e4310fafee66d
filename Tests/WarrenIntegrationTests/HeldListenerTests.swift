import Foundation
import Testing
import WarrenCore
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 20: warren holds the local forwards' listeners and hands each
/// connection to the tunnel's ssh master. Against a real sshd and a real
/// target, through the real `warren` binary: a client that connects every
/// 20 ms is never refused while ssh is killed or dropped, another local user
/// never gets the port, and the counts are warren's own.
@Suite(.serialized) struct HeldListenerTests {
    /// As another local user (nobody): tries to bind 127.0.0.1:`port` in a loop
    /// and writes `GOT` to its log the moment it succeeds; `tries N` every 200.
    static func portGrabber(_ lab: Lab, port: Int) throws -> SpawnedProcess {
        let script = """
            use Socket; $| = 1; my $n = 0;
            while (1) {
                socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
                setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1);
                if (bind($s, sockaddr_in($ARGV[0], inet_aton("127.0.0.1"))) && listen($s, 1)) { print "GOT\\n"; }
                close($s); $n++; print "tries $n\\n" if $n % 200 == 0;
            }
            """
        return try lab.spawn(LocalAttacker.asNobody[0], Array(LocalAttacker.asNobody.dropFirst()) + ["/usr/bin/perl", "-e", script, "\(port)"], log: "grabber.log")
    }

    /// Faults `count` times, each after a second of uptime, waiting for the
    /// tunnel to be up with a new ssh after each.
    /// Async, so that its seconds of waiting leave the test pool's threads to other tests.
    func faults(_ count: Int, _ warren: WarrenSupervisor, _ name: String = "db", fault: (Int32) -> Void) async throws {
        for round in 1...count {
            try await Task.sleep(for: .seconds(1))
            let pid = try #require(warren.sshPID(name), "round \(round): an ssh runs")
            fault(pid)
            try require(warren.waitFor(name, timeout: .seconds(10)) { $0.state == .up && $0.pid != nil && $0.pid != pid } != nil, "round \(round): up again", warren)
        }
    }

    func forwardCounts(_ warren: WarrenSupervisor, _ name: String = "db") -> ForwardConnections? {
        warren.tunnel(name)?.connections?.first { $0.forward.hasPrefix("L ") }
    }

    @Test func noClientIsRefusedThroughTenKillsAndFiveBastionDrops() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (warren, port) = try lab.startOneTunnel()
        defer { warren.stop() }
        let config = try String(contentsOfFile: lab.tunnelFile("db", "ssh_config"), encoding: .utf8)
        #expect(!config.contains("LocalForward") && config.contains("ControlMaster yes"), "ssh is a master with no -L of its own:\n\(config)")
        let grabber = try Self.portGrabber(lab, port: port)
        defer { _ = grabber.terminate() }
        let client = SteadyClient(port: port)
        try await faults(10, warren) { kill($0, SIGKILL) }
        try await faults(5, warren) { _ in lab.sshd.killConnections() }
        try await Task.sleep(for: .milliseconds(500))
        let figures = client.stop()
        print("held listeners, 10 kill -9 and 5 bastion drops: \(figures)")
        #expect(figures.attempts > 500, "the client kept connecting: \(figures)")
        #expect(figures.refused == 0, "no connection refused: \(figures)")
        #expect(figures.late == 0 && figures.longest < 2, "each answered within 2 s: \(figures)")
        // The client has one connection at a time: at most that one is open
        // when a fault ends its ssh, and ssh carried its bytes (a cut, not a refusal).
        #expect(figures.cut <= 15, "only connections caught open by a fault are cut: \(figures)")
        #expect(grabber.logText().contains("tries"), "the other user kept trying: \(grabber.logText().suffix(200))")
        #expect(!grabber.logText().contains("GOT"), "the other user never got the port")
        let counts = try #require(waitForCounts(warren) { $0.open == 0 && $0.total >= figures.answered })
        print("counts: \(counts)")
        // Every answered connection was handed to ssh; a cut one was, unless the
        // client gave up while it still waited.
        #expect((figures.answered...(figures.answered + figures.cut)).contains(counts.total), "opened = what the client got through: \(counts) vs \(figures)")
        #expect(counts.waited > 0, "some connections waited for ssh: \(counts)")
        #expect(counts.failed == 0 && counts.dropped == 0, "\(counts)")
        #expect(counts.probes > 0 && counts.probeFailures == 0, "probes are counted apart: \(counts)")
    }

    func waitForCounts(_ warren: WarrenSupervisor, _ name: String = "db", _ condition: (ForwardConnections) -> Bool) -> ForwardConnections? {
        var last: ForwardConnections?
        _ = waitUntil(timeout: .seconds(10)) {
            last = forwardCounts(warren, name)
            return last.map(condition) ?? false
        }
        return last
    }

    @Test func probesAreChannelOpensCountedApartFromClients() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (warren, port) = try lab.startOneTunnel()
        defer { warren.stop() }
        let idle = try #require(waitForCounts(warren) { $0.probes >= 2 }, "probes run with no client")
        #expect(idle.total == 0 && idle.open == 0, "no client, no client connection: \(idle)")
        #expect(lab.target.acceptedConnections >= 2, "a probe reaches the target (the bastion opened the channel)")
        #expect(try TCPClient.echo(port: port))
        let one = try #require(waitForCounts(warren) { $0.total == 1 && $0.open == 0 })
        #expect(one.probeFailures == 0)
        // A dead target: the bastion refuses the channel; a probe says so without a client.
        lab.target.stop()
        let degraded = warren.waitFor("db", timeout: .seconds(10)) { $0.state == .degraded }
        #expect(degraded?.lastError?.kind == .targetUnreachable, "\(String(describing: degraded))")
        let failed = try #require(waitForCounts(warren) { $0.probeFailures >= 1 })
        #expect(failed.total == 1 && failed.failed == 0, "probe failures are not client failures: \(failed)")
        // A client now: accepted, refused by the bastion, closed; counted as failed.
        #expect(try TCPClient.echo(port: port, timeout: .seconds(3)) == false)
        #expect(waitForCounts(warren) { $0.failed == 1 } != nil, "the client's refused channel is counted")
        let metrics = try String(contentsOfFile: lab.stateDir + "/status.json", encoding: .utf8)
        #expect(metrics.contains("\"probes_total\"") && metrics.contains("\"connections_waited_total\""), "status.json has the new counts")
    }

    @Test func aConnectionWaitsAtMostConnectTimeoutThenIsDroppedAndCounted() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let local = try lab.forward()
        let warren = try lab.startSupervisor(config: SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec]).replacingOccurrences(of: "connect_timeout = 3", with: "connect_timeout = 2"))
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "up", warren)
        lab.sshd.stop()
        lab.sshd.killConnections()
        try require(warren.waitFor("db") { $0.state == .backoff || $0.state == .starting || $0.state == .connecting } != nil, "down", warren)
        let started = ContinuousClock.now
        let fd = try TCPClient.connect(port: local.port)
        defer { close(fd) }
        #expect(TCPClient.echo(on: fd, timeout: .seconds(6)) == false, "no bastion: no answer")
        let waited = (ContinuousClock.now - started).seconds
        #expect(waited >= 1.5 && waited < 4, "closed after about connect_timeout (2 s): \(waited)")
        let counts = try #require(waitForCounts(warren) { $0.dropped == 1 })
        #expect(counts.waited >= 1, "\(counts)")
    }

    @Test func aReloadThatChangesTheTargetKeepsTheListenerAndRefusesNoOne() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let second = try lab.startTarget()
        let local = try lab.forward()
        let other = try lab.forward()
        let base = SupervisorConfig.tunnel("other", sshd: lab.sshd, local: [other.spec])
        let warren = try lab.startSupervisor(config: SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec]) + base)
        defer { warren.stop() }
        try require(warren.waitForState("db", .up) && warren.waitForState("other", .up), "up", warren)
        let held = try TCPClient.connect(port: other.port)
        defer { close(held) }
        #expect(TCPClient.echo(on: held))
        let client = SteadyClient(port: local.port)
        Thread.sleep(forTimeInterval: 0.5)
        let before = second.acceptedConnections
        try warren.reload(with: SupervisorConfig.tunnel("db", sshd: lab.sshd, local: ["127.0.0.1:\(local.port):127.0.0.1:\(second.port)"]) + base)
        let reached = waitUntil(timeout: .seconds(10)) { second.acceptedConnections > before + 5 }
        if !reached { _ = client.stop() }
        try require(reached, "connections reach the new target", warren)
        let figures = client.stop()
        print("reload that changes the target: \(figures)")
        #expect(figures.refused == 0 && figures.late == 0, "\(figures)")
        #expect(TCPClient.echo(on: held), "a connection through the unchanged tunnel survives the reload")
    }

    /// A reload that moves a listener closes that one only: the other
    /// tunnel's listener and its open connection are not touched.
    @Test func aReloadThatMovesAListenerClosesOnlyThatListener() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let a = try lab.forward()
        let moved = try lab.forward()
        let b = try lab.forward()
        let other = SupervisorConfig.tunnel("b", sshd: lab.sshd, local: [b.spec])
        let warren = try lab.startSupervisor(config: SupervisorConfig.tunnel("a", sshd: lab.sshd, local: [a.spec]) + other)
        defer { warren.stop() }
        try require(warren.waitForState("a", .up) && warren.waitForState("b", .up), "up", warren)
        let held = try TCPClient.connect(port: b.port)
        defer { close(held) }
        #expect(TCPClient.echo(on: held))
        let bPID = warren.sshPID("b")
        try warren.reload(with: SupervisorConfig.tunnel("a", sshd: lab.sshd, local: [moved.spec]) + other)
        #expect(waitUntil(timeout: .seconds(10)) { !FreePort.isListening(a.port) }, "the old port of a is closed")
        #expect(try TCPClient.echo(port: moved.port), "a listens where it moved")
        #expect(TCPClient.echo(on: held) && warren.sshPID("b") == bPID, "b's connection and ssh are untouched")
        #expect(try TCPClient.echo(port: b.port))
    }

    /// The reload's new ssh takes new connections while the old one carries
    /// those open through it to their end: no open connection is cut.
    @Test func aReloadKeepsConnectionsOpenThroughTheOldSSHUntilTheyEnd() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let second = try lab.startTarget()
        let (warren, port) = try lab.startOneTunnel()
        defer { warren.stop() }
        let held = try TCPClient.connect(port: port)
        defer { close(held) }
        #expect(TCPClient.echo(on: held))
        let old = try #require(warren.sshPID("db"))
        try warren.reload(with: SupervisorConfig.tunnel("db", sshd: lab.sshd, local: ["127.0.0.1:\(port):127.0.0.1:\(second.port)"]))
        try require(warren.waitFor("db") { $0.state == .up && $0.pid != nil && $0.pid != old } != nil, "up with a new ssh", warren)
        #expect(try TCPClient.echo(port: port) && second.acceptedConnections >= 1, "new connections reach the new target")
        #expect(TCPClient.echo(on: held), "the connection opened before the reload still passes data")
        #expect(ProcessTable.exists(old) && !ProcessTable.isZombie(old), "through the old ssh, still running")
        close(held)
        #expect(waitUntil(timeout: .seconds(10)) { !ProcessTable.exists(old) || ProcessTable.isZombie(old) }, "the old ssh ends once its last connection has")
        #expect(try TCPClient.echo(port: port), "and the new one carries on")
    }

    @Test func aUnixSocketForwardIsHeldByWarrenWithMode0600() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let path = lab.stateDir + "/db.sock"
        let warren = try lab.startSupervisor(config: SupervisorConfig.tunnel("db", sshd: lab.sshd, local: ["\(path):127.0.0.1:\(lab.target.port)"]))
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "up", warren)
        var info = stat()
        #expect(lstat(path, &info) == 0 && info.st_mode & 0o777 == 0o600, "0600 from the start")
        let pid = try #require(warren.sshPID("db"))
        kill(pid, SIGKILL)
        // Right after the kill, before the new ssh: the socket still answers, and the connection waits for it.
        #expect(try unixEcho(path), "through the unix socket across a kill")
        #expect(waitForCounts(warren) { $0.total >= 1 } != nil)
        warren.stop()
        #expect(lstat(path, &info) != 0, "warren removes the socket it made")
    }

    func unixEcho(_ path: String) throws -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8))
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw FixtureError("connect \(path)", errno: errno) }
        return TCPClient.echo(on: fd)
    }

    @Test func sharedModeMembersAreHeldTooThroughMasterKills() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let a = try lab.forward()
        let b = try lab.forward()
        let warren = try lab.startSupervisor(config:
            SupervisorConfig.tunnel("a", sshd: lab.sshd, local: [a.spec], extra: ["share_connection = true"])
            + SupervisorConfig.tunnel("b", sshd: lab.sshd, local: [b.spec], extra: ["share_connection = true"]))
        defer { warren.stop() }
        try require(warren.waitForState("a", .up) && warren.waitForState("b", .up), "up", warren)
        let client = SteadyClient(port: a.port)
        try await faults(5, warren, "a") { kill($0, SIGKILL) }
        try require(warren.waitForState("b", .up), "b up", warren)
        try await Task.sleep(for: .milliseconds(300))
        let figures = client.stop()
        print("shared mode, 5 kill -9 of the master: \(figures)")
        #expect(figures.refused == 0 && figures.late == 0 && figures.cut <= 5, "\(figures)")
        let counts = try #require(waitForCounts(warren, "a") { $0.open == 0 && $0.total >= figures.answered })
        #expect(counts.total == figures.answered + figures.cut && counts.probes > 0, "counted in shared mode too: \(counts)")
        #expect(try TCPClient.echo(port: b.port))
    }
}
