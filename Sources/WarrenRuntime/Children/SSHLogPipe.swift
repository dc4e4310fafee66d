import Dispatch
import Foundation
import Synchronization
import WarrenCore

/// The FIFO that ssh writes its own log to (`ssh -E PATH`), so that ssh's
/// words are read apart from the server's: a pre-auth banner is printed by ssh
/// on stderr, whatever it imitates, and never reaches this pipe. Jump hops'
/// ssh log here too (the generated ProxyCommand passes `-E "$WARREN_SSH_LOG"`).
///
/// warren opens the FIFO read-write before ssh starts, so ssh's open never
/// blocks and no writer coming and going makes it look ended; the end of the
/// log is the end of the run (`drain()` after ssh exited). Each ssh log line
/// is one write of under 4 kB, so lines of several writers never mix.
public final class SSHLogPipe: Sendable {
    public let path: String
    private let fd: Int32
    private let queue: DispatchQueue
    // Touched only at init and on `queue`.
    nonisolated(unsafe) private let source: any DispatchSourceRead
    private let splitter = Mutex(LineSplitter())
    private let deliver: @Sendable ([String]) -> Void
    private let drained = Mutex(false)

    /// Makes the FIFO at `path` (replacing what is there), ready for ssh to
    /// open; reading starts with `start()`. `deliver` gets each batch of
    /// complete lines, in order, on one queue.
    public init(path: String, deliver: @escaping @Sendable ([String]) -> Void) throws {
        unlink(path)
        guard mkfifo(path, 0o600) == 0 else { throw LogPipeError(path: path, errno: errno) }
        let fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            let code = errno
            unlink(path)
            throw LogPipeError(path: path, errno: code)
        }
        self.path = path
        self.fd = fd
        self.deliver = deliver
        self.queue = DispatchQueue(label: "warren.ssh-log")
        self.source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        source.setEventHandler { [weak self] in self?.readAvailable() }
    }

    private let started = Mutex(false)

    /// Starts delivering lines: call it once the spawn has been reported, so
    /// that no line of a run reaches anyone before the run's start does (what
    /// ssh writes meanwhile waits in the pipe).
    public func start() {
        let first = started.withLock { started in
            defer { started = true }
            return !started
        }
        if first { source.activate() }
    }

    /// Reads what is left after ssh exited, delivers it, and closes the pipe.
    /// Call once the run is over; lines delivered after it returns: none.
    public func drain() {
        queue.sync {
            guard !drained.withLock({ $0 }) else { return }
            readAvailable()
            let rest = splitter.withLock { $0.finish() }
            if !rest.isEmpty { deliver(rest) }
            drained.withLock { $0 = true }
            start()  // an inactive source may not be cancelled
            source.cancel()
            close(fd)
            unlink(path)
        }
    }

    /// On the queue: everything the pipe holds now.
    private func readAvailable() {
        guard !drained.withLock({ $0 }) else { return }
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            let lines = splitter.withLock { $0.append(buffer[..<n]) }
            if !lines.isEmpty { deliver(lines) }
        }
    }

    deinit {
        if !drained.withLock({ $0 }) {
            start()
            source.cancel()
            close(fd)
            unlink(path)
        }
    }
}

public struct LogPipeError: Error, CustomStringConvertible {
    public var path: String
    public var errno: Int32
    public var description: String { "cannot make ssh's log pipe \(path): \(String(cString: strerror(errno)))" }
}
