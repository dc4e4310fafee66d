import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A client for tests: proves that bytes flow end to end, e.g. through a forward.
public enum TCPClient {
    /// Connects to 127.0.0.1:`port`, sends `payload` and reads until the same
    /// bytes came back.
    ///
    /// - Returns: `true` if they came back; `false` if the connection was
    ///   accepted but then closed, reset, answered something else or stayed
    ///   silent past `timeout` (what a forward to a dead target looks like).
    /// - Throws: if the connect itself fails (refused, or no answer in time).
    public static func echo(port: Int, payload: [UInt8], timeout: Duration = .seconds(5)) throws -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let fd = try connect(port: port, timeout: timeout)
        defer { close(fd) }
        guard TCPTarget.writeAll(fd, payload[...]) else { return false }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while received.count < payload.count {
            guard wait(fd, events: POLLIN, until: deadline) else { return false }
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { return false }
            received.append(contentsOf: buffer[..<count])
        }
        return received == payload
    }

    /// `echo` with the UTF-8 bytes of `payload`.
    public static func echo(port: Int, payload: String = "warren echo \(UInt32.random(in: 0...UInt32.max))\n",
                            timeout: Duration = .seconds(5)) throws -> Bool {
        try echo(port: port, payload: Array(payload.utf8), timeout: timeout)
    }

    /// Whether a TCP connect to 127.0.0.1:`port` succeeds (the socket is closed at once).
    public static func canConnect(port: Int, timeout: Duration = .seconds(2)) -> Bool {
        guard let fd = try? connect(port: port, timeout: timeout) else { return false }
        close(fd)
        return true
    }

    /// A connected socket to 127.0.0.1:`port`; the caller closes it.
    public static func connect(port: Int, timeout: Duration = .seconds(5)) throws -> Int32 {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket", errno: errno) }
        var address = FreePort.loopback(port: port)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 {
            guard errno == EINPROGRESS else {
                let error = errno
                close(fd)
                throw FixtureError("connect 127.0.0.1:\(port)", errno: error)
            }
            guard wait(fd, events: POLLOUT, until: deadline) else {
                close(fd)
                throw FixtureError("connect 127.0.0.1:\(port) timed out", errno: ETIMEDOUT)
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else {
                close(fd)
                throw FixtureError("connect 127.0.0.1:\(port)", errno: error)
            }
        }
        // Back to blocking; reads are guarded by poll with the deadline.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }

    /// Polls `fd` for `events` until `deadline`; true when ready (or hung up: a read then says why).
    private static func wait(_ fd: Int32, events: Int32, until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return false }
            var entry = pollfd(fd: fd, events: Int16(events), revents: 0)
            let ready = Glibc.poll(&entry, 1, Int32(max(1, left.seconds * 1000)))
            if ready > 0 { return true }
            if ready < 0, errno != EINTR { return false }
        }
    }
}
