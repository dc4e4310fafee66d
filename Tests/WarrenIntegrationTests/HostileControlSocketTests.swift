import Foundation
import Testing
import WarrenCore
import WarrenRuntime
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 19, item 6: a listener at a shared master's control path that
/// answers with a 200,000-byte length and then one byte every 10 s. It used to
/// hold a reload (and with it status.json and the metrics of every tunnel) and
/// SIGTERM for as long as it liked, while /healthz said 200.
@Suite(.serialized) struct HostileControlSocketTests {
    func config(_ lab: Lab, a: [String], aDynamic: [String] = [], b: [String], c: [String]) -> String {
        SupervisorConfig.tunnel("a", sshd: lab.sshd, local: a, dynamic: aDynamic, extra: ["share_connection = true"])
            + SupervisorConfig.tunnel("b", sshd: lab.sshd, local: b, extra: ["share_connection = true"])
            + SupervisorConfig.tunnel("c", sshd: lab.sshd, local: c)
    }

    @Test func aDribblingControlSocketHoldsNeitherTheLoopNorSIGTERM() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let a = try lab.forward(), b = try lab.forward(), c = try lab.forward(), added = try lab.forward()
        let metrics = try FreePort.find()
        let warren = try lab.startSupervisor(
            config: config(lab, a: [a.spec], b: [b.spec], c: [c.spec]), arguments: ["--metrics-listen", "127.0.0.1:\(metrics)"])
        defer { _ = warren.stop() }
        for name in ["a", "b", "c"] { try require(warren.waitForState(name, .up), "\(name) up", warren) }

        // The attacker takes the master's control path (the member's ssh_config names it).
        let sshConfig = try String(contentsOfFile: lab.tunnelFile("a", "ssh_config"), encoding: .utf8)
        let line = try #require(sshConfig.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("ControlPath ") })
        let path = String(line.trimmingCharacters(in: .whitespaces).dropFirst("ControlPath ".count))
        #expect(unlink(path) == 0, "the master's socket at \(path)")
        let hostile = try DribblingListener(path: path)
        defer { hostile.stop() }

        // a gains a SOCKS forward, which the master holds (warren holds the local
        // forwards' listeners itself): it is added over the hostile socket.
        try warren.reload(with: config(lab, a: [a.spec], aDynamic: ["127.0.0.1:\(added.port)"], b: [b.spec], c: [c.spec]))
        let reloaded = ContinuousClock.now
        try require(waitUntil(timeout: .seconds(10)) { hostile.accepted >= 1 }, "an exchange reaches the hostile socket", warren)

        // Meanwhile the other tunnels' status is kept: c's ssh dies and is back, in status.json, in seconds.
        let oldC = try #require(warren.sshPID("c"))
        kill(oldC, SIGKILL)
        let cBack = warren.waitFor("c", timeout: .seconds(10)) { $0.state == .up && $0.pid != nil && $0.pid != oldC }
        let cAfter = (ContinuousClock.now - reloaded).seconds
        try require(cBack != nil, "c restarted and reported while a's exchange is held", warren)
        #expect(hostile.open >= 1, "an exchange was still held when c was reported: \(hostile.accepted) accepted, \(hostile.open) open")
        let health = try HTTPClient.request(port: metrics, path: "/healthz", timeout: .seconds(2))
        #expect(health.status == 200 && health.body == "ok\n", "the loop turns: \(health)")
        let scrape = try HTTPClient.request(port: metrics, path: "/metrics", timeout: .seconds(2))
        #expect(scrape.status == 200 && scrape.body.contains("tunnel=\"c\""), "\(scrape.status)")
        #expect(warren.tunnel("b")?.state == .up, "b's forwards were added before the swap and stay")

        // a's exchange ends at its deadline for the whole exchange, not byte by byte (23 days).
        let failed = warren.waitFor("a", timeout: .seconds(30)) { $0.lastError?.message.contains("no whole answer within 15 s") == true }
        let aAfter = (ContinuousClock.now - reloaded).seconds
        try require(failed != nil, "a fails at the deadline, naming the control socket", warren)
        #expect(failed?.lastError?.message.contains(path) == true, "\(String(describing: failed?.lastError))")

        // SIGTERM while a retry's exchange is held on the socket.
        let seen = hostile.accepted
        try require(waitUntil(timeout: .seconds(15)) { hostile.accepted > seen && hostile.open >= 1 }, "a retries on the hostile socket", warren)
        let signalled = ContinuousClock.now
        warren.process.signal(SIGTERM)
        let code = warren.process.waitForExit(timeout: .seconds(30))
        let stopTook = (ContinuousClock.now - signalled).seconds
        let stopTimeout = TunnelMachine.teardown.grace
        print("hostile control socket: c back in status.json \(String(format: "%.2f", cAfter)) s after the reload; a failed at its deadline after \(String(format: "%.1f", aAfter)) s; SIGTERM -> exit in \(String(format: "%.2f", stopTook)) s (stop timeout \(stopTimeout) s); \(hostile.accepted) exchanges held")
        #expect(code == 0, "\(warren.logText())")
        #expect(stopTook < stopTimeout, "SIGTERM took \(stopTook) s")
    }

    /// /healthz says what the loop is stuck on once it has not turned for the limit.
    @Test func healthzNamesWhatStallsTheLoop() throws {
        let pulse = SupervisorPulse(now: 100)
        #expect(pulse.stall(limit: 10, now: 105) == nil)
        let quiet = try #require(pulse.stall(limit: 10, now: 112))
        #expect(quiet.contains("has not turned for 12 s"), "\(quiet)")
        let port = try FreePort.find()
        let server = try MetricsServer.start(
            MetricsServer.Address.parse("127.0.0.1:\(port)").get(), render: { "" },
            health: { pulse.stall(limit: 10, now: 112).map { .unhealthy($0) } ?? .healthy })
        defer { server.stop() }
        let response = try HTTPClient.request(port: port, path: "/healthz")
        #expect(response.status == 503 && response.body.contains("the supervisor's loop is stalled"), "\(response)")
    }
}

/// A unix listener that answers every connection with a 200,000-byte length
/// and then one byte every 10 s, until stopped. Each connection's thread
/// closes its own descriptor, so none is closed twice.
final class DribblingListener: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()
    private var clients: [Int32] = []
    private var stopped = false
    private var acceptedCount = 0

    var accepted: Int { lock.withLock { acceptedCount } }
    var open: Int { lock.withLock { clients.count } }

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket: \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw FixtureError("bind \(path): \(errno)")
        }
        Thread { [self] in acceptLoop() }.start()
    }

    private func acceptLoop() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                break
            }
            let keep = lock.withLock { () -> Bool in
                guard !stopped else { return false }
                clients.append(client)
                acceptedCount += 1
                return true
            }
            guard keep else { close(client); break }
            Thread { [self] in dribble(client) }.start()
        }
        close(fd)
    }

    private func dribble(_ client: Int32) {
        var header: [UInt8] = [0x00, 0x03, 0x0d, 0x40]  // 200,000
        _ = send(client, &header, 4, Int32(MSG_NOSIGNAL))
        while true {
            // Readable means the peer left or stop() shut it down; else a byte every 10 s.
            var entry = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, 10_000) != 0 { break }
            var byte: UInt8 = 0
            guard send(client, &byte, 1, Int32(MSG_NOSIGNAL)) == 1 else { break }
        }
        lock.withLock { clients.removeAll { $0 == client } }
        close(client)
    }

    func stop() {
        lock.withLock {
            stopped = true
            for client in clients { shutdown(client, Int32(SHUT_RDWR)) }
        }
        shutdown(fd, Int32(SHUT_RDWR))
    }
}
