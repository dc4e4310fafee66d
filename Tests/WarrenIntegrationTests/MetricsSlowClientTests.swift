import Foundation
import Testing
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Finding 7 of the security review: clients that trickle a byte every few
/// seconds used to hold all 16 connections (the 5 s limit was per recv) and
/// keep every scrape failing. Now the budget is for the whole request, and a
/// new connection makes room by dropping the oldest.
@Suite(.serialized) struct MetricsSlowClientTests {
    /// `warren run` with metrics on loopback and one tunnel that never comes up.
    func startWarren(_ lab: Lab) throws -> (WarrenSupervisor, Int) {
        let port = try FreePort.find()
        let key = try lab.directory.write("key\n", to: "id", mode: 0o600)
        let config = """
            [tunnels.db]
            host = "127.0.0.1"
            port = 1
            identity_file = "\(key)"
            host_key = "\(ConfigCases.hostKey)"
            local_forward = ["127.0.0.1:\(try FreePort.find()):127.0.0.1:5432"]
            """
        let supervisor = try lab.startSupervisor(config: config, arguments: ["--metrics-listen", "127.0.0.1:\(port)"])
        #expect(FreePort.waitUntilListening(port, timeout: .seconds(20)), "\(supervisor.logText())")
        return (supervisor, port)
    }

    /// Sends one byte of a request head on each connection that is still open;
    /// returns how many were open.
    func trickle(_ fds: inout [Int32]) -> Int {
        fds = fds.filter { fd in
            var byte: UInt8 = UInt8(ascii: "G")
            if Glibc.send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) == 1 { return true }
            close(fd)
            return false
        }
        return fds.count
    }

    @Test func slowClientsCannotKeepScrapesFailing() async throws {
        let lab = try Lab(prefix: "sec-slow-", sshd: nil)
        defer { lab.stop() }
        let (supervisor, port) = try startWarren(lab)
        defer { supervisor.stop() }
        var slow: [Int32] = []
        defer { for fd in slow { close(fd) } }
        for _ in 0..<20 { slow.append(try TCPClient.connect(port: port)) }
        var failures: [String] = []
        for round in 0..<8 {
            _ = trickle(&slow)
            // Reconnect whatever was dropped: the attacker keeps 20 connections going.
            while slow.count < 20 { slow.append(try TCPClient.connect(port: port)) }
            do {
                let response = try HTTPClient.request(port: port, path: "/metrics", timeout: .seconds(3))
                if response.status != 200 { failures.append("round \(round): status \(response.status)") }
            } catch {
                failures.append("round \(round): \(error)")
            }
            try await Task.sleep(for: .seconds(1))
        }
        #expect(failures.isEmpty, "every scrape is answered while slow clients hold connections: \(failures)")
    }

    @Test func aTricklingClientIsCutAtTheRequestDeadline() async throws {
        let lab = try Lab(prefix: "sec-slow-", sshd: nil)
        defer { lab.stop() }
        let (supervisor, port) = try startWarren(lab)
        defer { supervisor.stop() }
        let fd = try TCPClient.connect(port: port)
        defer { close(fd) }
        let started = ContinuousClock.now
        var closedAfter: Duration?
        // A byte a second: never 5 s of silence, so a per-read timeout never fires.
        // Waiting in poll (not Task.sleep) notices the server's answer and close at once.
        while closedAfter == nil, ContinuousClock.now - started < .seconds(15) {
            var byte = UInt8(ascii: "G")
            _ = Glibc.send(fd, &byte, 1, Int32(MSG_NOSIGNAL))
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, 1000) > 0 { closedAfter = ContinuousClock.now - started }
        }
        let held = closedAfter ?? (ContinuousClock.now - started)
        #expect(closedAfter != nil, "the server still holds the connection after \(held)")
        #expect(held < .seconds(10), "cut after \(held); the budget is 5 s for the whole request")
    }
}
