import Foundation
import Testing
import WarrenCore
import WarrenRuntime
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `TargetProbe.probe` against real loopback listeners: what each kind of far
/// end gives, and that many probes at once share one thread and keep their own
/// deadlines.
@Suite(.serialized) struct TargetProbeTests {
    @Test func aTargetThatKeepsTheConnectionOpenIsReachable() async throws {
        let target = try TCPTarget.start(behavior: .silent)
        defer { target.stop() }
        let started = ContinuousClock.now
        let result = await TargetProbe.probe(.tcp(host: "127.0.0.1", port: target.port), wait: 0.3)
        #expect(result == .reachable)
        #expect(ContinuousClock.now - started >= .milliseconds(290), "it waited the whole window for a close")
    }

    @Test func aTargetThatClosesAtOnceIsUnreachable() async throws {
        let target = try TCPTarget.start(behavior: .closeOnAccept)
        defer { target.stop() }
        let started = ContinuousClock.now
        let result = await TargetProbe.probe(.tcp(host: "127.0.0.1", port: target.port), wait: 5)
        guard case .unreachable(let words) = result else {
            Issue.record("expected unreachable, got \(result)")
            return
        }
        #expect(words.contains("accepted and then closed"))
        #expect(ContinuousClock.now - started < .seconds(3), "the close ends the probe, not the window")
    }

    @Test func nothingListeningIsReportedAsSuch() async throws {
        let port = try FreePort.find()
        let result = await TargetProbe.probe(.tcp(host: nil, port: port), wait: 0.2)
        #expect(result == .notListening("nothing accepts connections on \(Forward.Endpoint.tcp(host: nil, port: port))"))
    }

    @Test func aUnixSocketForwardIsProbedToo() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/forward.sock"
        let missing = await TargetProbe.probe(.unix(path: path), wait: 0.1)
        #expect(missing == .notListening("nothing accepts connections on \(Forward.Endpoint.unix(path: path))"))
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (i, b) in path.utf8.enumerated() { buffer[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && Glibc.listen(fd, 8) == 0)
        #expect(await TargetProbe.probe(.unix(path: path), wait: 0.1) == .reachable)
    }

    /// Two hundred probes of 0.5 s at once end in about 0.5 s, and the process
    /// gains at most a couple of threads while they run (one per probe before).
    /// The listener never accepts: the kernel completes each connection into
    /// its backlog, which holds it open without a thread on this side either.
    @Test func manyProbesShareOneThread() async throws {
        let port = try FreePort.find()
        let listener = try Self.listen(port: port, backlog: 1024)
        defer { close(listener) }
        let endpoint = Forward.Endpoint.tcp(host: "127.0.0.1", port: port)
        _ = await TargetProbe.probe(endpoint, wait: 0)  // the loop's thread exists from here on
        let before = try #require(Self.threads())
        let started = ContinuousClock.now
        // Each child returns a probe's result, or (the sampler) the thread count.
        let (results, during) = await withTaskGroup(of: (ProbeResult?, Int?).self) { group in
            for _ in 0..<200 {
                group.addTask { (await TargetProbe.probe(endpoint, wait: 0.5), nil) }
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(250))
                return (nil, Self.threads() ?? Int.max)
            }
            var results: [ProbeResult] = []
            var during = Int.max
            for await (result, threads) in group {
                if let result { results.append(result) }
                if let threads { during = threads }
            }
            return (results, during)
        }
        let took = ContinuousClock.now - started
        #expect(results.count == 200 && results.allSatisfy { $0 == .reachable })
        #expect(took < .seconds(20), "probes ran side by side (one after another: 100 s), not one after another: \(took)")
        #expect(during <= before + 2, "threads while 200 probes waited: \(during), before: \(before)")
    }

    /// A short probe is not held back by a long one that started first.
    @Test func eachProbeKeepsItsOwnDeadline() async throws {
        let target = try TCPTarget.start(behavior: .silent)
        defer { target.stop() }
        let endpoint = Forward.Endpoint.tcp(host: "127.0.0.1", port: target.port)
        async let long = TargetProbe.probe(endpoint, wait: 8)
        try await Task.sleep(for: .milliseconds(50))
        let started = ContinuousClock.now
        let short = await TargetProbe.probe(endpoint, wait: 0.2)
        #expect(short == .reachable)
        #expect(ContinuousClock.now - started < .seconds(6), "the short probe did not wait for the long one (8 s)")
        #expect(await long == .reachable)
    }

    static func threads() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Threads:") })
        else { return nil }
        return Int(line.dropFirst("Threads:".count).trimmingCharacters(in: .whitespaces))
    }

    /// A listening socket on 127.0.0.1:port that never accepts.
    static func listen(port: Int, backlog: Int32) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, backlog) == 0 else {
            close(fd)
            throw FixtureError("cannot listen on 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
        return fd
    }
}
