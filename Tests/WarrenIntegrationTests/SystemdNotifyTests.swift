import Foundation
import Testing
import WarrenRuntime
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// What systemd hears from `warren run` over $NOTIFY_SOCKET: a socket the test
/// binds stands in for systemd's.
@Suite(.serialized)
struct SystemdNotifyTests {
    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    /// Collects datagrams until one satisfies `done` or `timeout` passes.
    static func receive(_ socket: DatagramSocket, into messages: inout [String], timeout: Duration = .seconds(20), until done: (String) -> Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let message = socket.receive(timeout: .milliseconds(200)) else { continue }
            messages.append(message)
            if done(message) { return true }
        }
        return false
    }

    static func fields(_ message: String) -> [String: String] {
        Dictionary(message.split(separator: "\n").compactMap { line in
            line.firstIndex(of: "=").map { (String(line[..<$0]), String(line[line.index(after: $0)...])) }
        }, uniquingKeysWith: { $1 })
    }

    @Test func readyReloadingStoppingAndWatchdogInOrder() async throws {
        let lab = try Lab.conditions([.ok, .deg])
        defer { lab.stop() }
        let socket = try DatagramSocket(name: lab.directory.appending("notify.sock"))
        defer { socket.close() }
        let warren = try lab.startSupervisor(environment: ["NOTIFY_SOCKET": socket.name, "WATCHDOG_USEC": "400000"])
        var messages: [String] = []

        #expect(Self.receive(socket, into: &messages) { Self.fields($0)["READY"] == "1" }, "no READY=1: \(messages)\n\(lab.supervisorLog())")
        #expect(lab.statusReport()?.tunnels.count == 2, "READY=1 comes after the tunnels were started")
        var pings = 0
        #expect(Self.receive(socket, into: &messages) { message in
            if message == "WATCHDOG=1" { pings += 1 }
            return pings >= 3
        }, "WATCHDOG=1 every 200 ms (WATCHDOG_USEC/2): \(messages)")
        // STATUS= tells `systemctl status` how many tunnels are up.
        #expect(messages.contains { $0.hasPrefix("STATUS=1/2 tunnels up") } || Self.receive(socket, into: &messages) { $0.hasPrefix("STATUS=1/2 tunnels up") }, "\(messages)")

        let beforeReload = Self.monotonicMicroseconds()
        warren.process.signal(SIGHUP)
        #expect(Self.receive(socket, into: &messages) { Self.fields($0)["READY"] == "1" }, "no READY=1 after the reload: \(messages)")
        let afterReload = Self.monotonicMicroseconds()

        warren.process.signal(SIGTERM)
        #expect(Self.receive(socket, into: &messages) { Self.fields($0)["STOPPING"] == "1" }, "no STOPPING=1: \(messages)")
        #expect(warren.process.waitForExit(timeout: .seconds(15)) == 0, "\(lab.supervisorLog())")
        messages += socket.drain()

        let lifecycle = messages.compactMap { message -> String? in
            let f = Self.fields(message)
            if f["READY"] == "1" { return "READY" }
            if f["RELOADING"] == "1" { return "RELOADING" }
            if f["STOPPING"] == "1" { return "STOPPING" }
            return nil
        }
        #expect(lifecycle == ["READY", "RELOADING", "READY", "STOPPING"], "\(messages)")
        let reloading = try #require(messages.first { Self.fields($0)["RELOADING"] == "1" })
        let stamp = try #require(Self.fields(reloading)["MONOTONIC_USEC"].flatMap(UInt64.init), "RELOADING=1 carries MONOTONIC_USEC: \(reloading)")
        #expect(stamp >= beforeReload && stamp <= afterReload, "MONOTONIC_USEC is CLOCK_MONOTONIC at the reload")
        let firstReady = try #require(messages.firstIndex { Self.fields($0)["READY"] == "1" })
        #expect(!messages[..<firstReady].contains("WATCHDOG=1"), "systemd arms the watchdog at READY=1; no ping before it")
        let stopping = try #require(messages.firstIndex { Self.fields($0)["STOPPING"] == "1" })
        #expect(messages.filter { $0 == "WATCHDOG=1" }.count >= 3)
        #expect(messages[stopping...].filter { $0 == "WATCHDOG=1" }.count <= 1, "pings stop with the supervisor")
    }

    @Test func abstractSocketNamesAndTheWatchdogsPid() throws {
        let name = "@warren-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let socket = try DatagramSocket(name: name)
        defer { socket.close() }
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": name, "WATCHDOG_USEC": "2000000"], pid: 1234)
        #expect(notifier.notify("READY=1\nSTATUS=hello"))
        #expect(socket.receive(timeout: .seconds(2)) == "READY=1\nSTATUS=hello")
        #expect(notifier.watchdogInterval == .seconds(1))

        let forOther = SystemdNotifier(environment: ["NOTIFY_SOCKET": name, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"], pid: 1234)
        #expect(forOther.watchdogInterval == nil, "the watchdog is another process's")
        let forUs = SystemdNotifier(environment: ["NOTIFY_SOCKET": name, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1234"], pid: 1234)
        #expect(forUs.watchdogInterval == .seconds(1))

        let outside = SystemdNotifier(environment: [:])
        #expect(!outside.isEnabled && !outside.notify("READY=1") && outside.watchdogInterval == nil)
    }
}
