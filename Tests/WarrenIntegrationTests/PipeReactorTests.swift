import Foundation
import Synchronization
import Testing
@testable import WarrenRuntime
#if canImport(Glibc)
import Glibc
#endif

/// PipeReactor over real pipes: lines, over-long lines, many pipes on one
/// thread, and a pipe whose consumer left.
@Suite(.serialized) struct PipeReactorTests {
    static func makePipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        return (ends[0], ends[1])
    }

    static func write(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            sent += n
        }
    }

    static func collect(_ stream: AsyncStream<PipeReactor.Line>) async -> [PipeReactor.Line] {
        var out: [PipeReactor.Line] = []
        for await line in stream { out.append(line) }
        return out
    }

    @Test func linesArriveWithoutTheirEndsAndTheLastOneAtEndOfFile() async throws {
        let reactor = PipeReactor()
        let (r, w) = try Self.makePipe()
        let lines = reactor.lines(of: r)
        Self.write(w, "debug1: one\r\nplain two\n")
        Self.write(w, "unfinished three")
        close(w)
        #expect(await Self.collect(lines) == [.init("debug1: one"), .init("plain two"), .init("unfinished three")])
        #expect(reactor.count == 0, "the pipe was closed and forgotten at its end")
    }

    /// A 150 kB banner line (which ended swift-subprocess's `strings()` reader)
    /// comes in pieces, and the line after it still arrives.
    @Test func aVeryLongLineIsSplitNotFatal() async throws {
        let reactor = PipeReactor()
        let (r, w) = try Self.makePipe()
        let lines = reactor.lines(of: r, maxLineLength: 16 * 1024)
        let writer = Thread {
            Self.write(w, String(repeating: "x", count: 150_000) + "\nAuthenticated to host\n")
            close(w)
        }
        writer.start()
        let got = await Self.collect(lines)
        #expect(got.count == 11)
        #expect(got.dropLast(2).allSatisfy { $0.continued && $0.text.utf8.count == 16 * 1024 })
        #expect(got[got.count - 2] == .init(String(repeating: "x", count: 150_000 - 9 * 16 * 1024)))
        #expect(got.last == .init("Authenticated to host"))
    }

    @Test func twoHundredPipesShareOneThread() async throws {
        let reactor = PipeReactor()
        var writers: [Int32] = []
        var streams: [AsyncStream<PipeReactor.Line>] = []
        let before = TargetProbeTests.threads() ?? 0
        for _ in 0..<200 {
            let (r, w) = try Self.makePipe()
            writers.append(w)
            streams.append(reactor.lines(of: r))
        }
        let during = TargetProbeTests.threads() ?? Int.max
        for (i, w) in writers.enumerated() {
            Self.write(w, "line of pipe \(i)\n")
            close(w)
        }
        var received: [String] = []
        for stream in streams { received += await Self.collect(stream).map(\.text) }
        #expect(received == (0..<200).map { "line of pipe \($0)" })
        #expect(during <= before + 1, "threads with 200 pipes: \(during), before: \(before)")
        #expect(reactor.count == 0)
    }

    /// Once nobody listens, the reactor keeps draining, so the child writing
    /// is never blocked on a full pipe (64 kB), and the pipe ends normally.
    @Test func aPipeWhoseConsumerLeftIsStillDrained() async throws {
        let reactor = PipeReactor()
        let (r, w) = try Self.makePipe()
        let consumer = Task {
            for await _ in reactor.lines(of: r) { return }
        }
        Self.write(w, "first\n")
        await consumer.value
        let wrote = Thread.detachedResult {
            Self.write(w, String(repeating: "y\n", count: 512 * 1024))
            close(w)
        }
        #expect(await wrote.wait(timeout: .seconds(20)), "a megabyte went through with nobody listening")
        let deadline = ContinuousClock.now + .seconds(10)
        while reactor.count > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(reactor.count == 0)
    }

    @Test(arguments: [
        ("a\nb\n", 8, ["a", "b"], ""),
        ("abc", 8, [], "abc"),
        ("abcdefghij\n", 4, ["abcd+", "efgh+", "ij"], ""),
        ("abcdefghij", 4, ["abcd+", "efgh+"], "ij"),
        ("abcd\n", 4, ["abcd"], ""),
        ("x\r\n", 4, ["x"], ""),
    ])
    func cutting(input: String, max: Int, lines: [String], rest: String) {
        var buffer = Array(input.utf8)
        let got = PipeReactor.cut(&buffer, maxLineLength: max).map { $0.text + ($0.continued ? "+" : "") }
        #expect(got == lines)
        #expect(String(decoding: buffer, as: UTF8.self) == rest)
    }
}

extension Thread {
    /// Runs `work` on a new thread; the result tells when it has finished.
    static func detachedResult(_ work: @escaping @Sendable () -> Void) -> Finished {
        let finished = Finished()
        Thread {
            work()
            finished.mark()
        }.start()
        return finished
    }

    final class Finished: Sendable {
        private let done = Mutex(false)
        func mark() { done.withLock { $0 = true } }
        func wait(timeout: Duration) async -> Bool {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if done.withLock({ $0 }) { return true }
                try? await Task.sleep(for: .milliseconds(10))
            }
            return done.withLock { $0 }
        }
    }
}
