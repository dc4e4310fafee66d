import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Reads many pipes (children's stderr) on one thread through one `poll()`
/// and hands their lines to async consumers. A thousand children cost one
/// thread that sleeps in `poll()` without a timeout: nothing wakes while no
/// child writes (swift-subprocess's `run` wakes once a second per child).
/// `poll()`, not epoll: Swift's Glibc module does not export <sys/epoll.h>
/// (swift-subprocess reaches it through a C shim of its own); a poll over a
/// thousand mostly idle pipes costs microseconds, and only when one speaks.
///
/// A line longer than `maxLineLength` bytes is delivered in pieces of at most
/// that length (`Line.continued` marks every piece but the last): no length
/// is fatal and the pipe is read to its end. After the consumer stops
/// listening the pipe is still drained, so a child never blocks on a full
/// pipe.
public final class PipeReactor: Sendable {
    /// One line of a pipe, without its `\n` (and without a `\r` before it).
    public struct Line: Sendable, Equatable {
        public var text: String
        /// The line went on past `maxLineLength`; the next piece continues it.
        public var continued: Bool

        public init(_ text: String, continued: Bool = false) {
            self.text = text
            self.continued = continued
        }
    }

    /// The process-wide reactor; its thread starts with the first pipe.
    public static let shared = PipeReactor()

    private struct Reader {
        var continuation: AsyncStream<Line>.Continuation
        var maxLineLength: Int
        var buffer: [UInt8] = []
        var listening = true
    }

    private struct State {
        var readers: [Int32: Reader] = [:]
        var started = false
    }

    private let state = Mutex(State())
    /// A pipe whose write end wakes the thread when the set of pipes changes.
    private let wakeFD: Int32
    private let wakeWriteFD: Int32

    /// A reactor of its own (tests); code uses `shared`.
    public init() {
        var ends: [Int32] = [-1, -1]
        precondition(pipe(&ends) == 0, "pipe failed: \(String(cString: strerror(errno)))")
        for fd in ends {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        (wakeFD, wakeWriteFD) = (ends[0], ends[1])
    }

    /// The lines of `fd` until its end of file. The reactor takes the
    /// descriptor over: it makes it non-blocking and closes it at the end.
    public func lines(of fd: Int32, maxLineLength: Int = 16 * 1024) -> AsyncStream<Line> {
        let (stream, continuation) = AsyncStream.makeStream(of: Line.self, bufferingPolicy: .unbounded)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        continuation.onTermination = { [self] _ in
            state.withLock { $0.readers[fd]?.listening = false }
        }
        let startThread = state.withLock { state in
            state.readers[fd] = Reader(continuation: continuation, maxLineLength: max(1, maxLineLength))
            defer { state.started = true }
            return !state.started
        }
        var one: UInt8 = 1
        _ = write(wakeWriteFD, &one, 1)  // a full wake pipe wakes the thread as well
        if startThread {
            let thread = Thread { [self] in run() }
            thread.name = "warren-pipes"
            thread.start()
        }
        return stream
    }

    /// Pipes being read now.
    public var count: Int { state.withLock { $0.readers.count } }

    private func run() {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var drain = [UInt8](repeating: 0, count: 256)
        while true {
            var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
            fds += state.withLock { $0.readers.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) } }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                fatalError("poll failed in the pipe reactor: \(String(cString: strerror(errno)))")
            }
            if fds[0].revents != 0 { while read(wakeFD, &drain, drain.count) > 0 {} }
            for entry in fds.dropFirst() where entry.revents != 0 {
                // One read per pipe per round, so that a chatty child cannot starve the rest.
                let n = read(entry.fd, &chunk, chunk.count)
                if n > 0 {
                    deliver(entry.fd, chunk[..<n])
                } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                    finish(entry.fd)
                }
            }
        }
    }

    private func deliver(_ fd: Int32, _ bytes: ArraySlice<UInt8>) {
        let (lines, continuation) = state.withLock { state -> ([Line], AsyncStream<Line>.Continuation?) in
            guard var reader = state.readers[fd] else { return ([], nil) }
            reader.buffer += bytes
            let lines = Self.cut(&reader.buffer, maxLineLength: reader.maxLineLength)
            state.readers[fd] = reader
            return (lines, reader.listening ? reader.continuation : nil)
        }
        for line in lines { continuation?.yield(line) }
    }

    /// End of file (or a read error): the rest of the buffer is the last line.
    private func finish(_ fd: Int32) {
        let reader = state.withLock { $0.readers.removeValue(forKey: fd) }
        close(fd)
        guard let reader else { return }
        if !reader.buffer.isEmpty { reader.continuation.yield(Self.line(reader.buffer[...], continued: false)) }
        reader.continuation.finish()
    }

    /// Takes every complete line out of `buffer`, and pieces of `maxLineLength`
    /// of a line that is longer; what is left is an unfinished line shorter than that.
    static func cut(_ buffer: inout [UInt8], maxLineLength: Int) -> [Line] {
        var lines: [Line] = []
        var start = 0
        while start < buffer.count {
            let end = buffer[start...].firstIndex(of: UInt8(ascii: "\n"))
            if let end, end - start <= maxLineLength {
                lines.append(line(buffer[start..<end], continued: false))
                start = end + 1
            } else if buffer.count - start >= maxLineLength {
                lines.append(line(buffer[start..<(start + maxLineLength)], continued: true))
                start += maxLineLength
            } else {
                break
            }
        }
        buffer.removeFirst(start)
        return lines
    }

    private static func line(_ bytes: ArraySlice<UInt8>, continued: Bool) -> Line {
        var bytes = bytes
        if !continued, bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return Line(String(decoding: bytes, as: UTF8.self), continued: continued)
    }
}
