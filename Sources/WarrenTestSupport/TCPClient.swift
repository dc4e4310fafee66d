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
    public static func echo(host: String = "127.0.0.1", port: Int, payload: [UInt8], timeout: Duration = .seconds(5)) throws -> Bool {
        let fd = try connect(host: host, port: port, timeout: timeout)
        defer { close(fd) }
        return echo(on: fd, payload: payload, timeout: timeout)
    }

    /// `echo` over a connection that is already open (one that must survive a reload).
    public static func echo(on fd: Int32, payload: [UInt8] = Array("still here\n".utf8), timeout: Duration = .seconds(5)) -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        guard LoopbackSocket.writeAll(fd, payload[...]) else { return false }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while received.count < payload.count {
            guard LoopbackSocket.wait(fd, for: POLLIN, until: deadline) else { return false }
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { return false }
            received.append(contentsOf: buffer[..<count])
        }
        return received == payload
    }

    /// `echo` with the UTF-8 bytes of `payload`.
    public static func echo(host: String = "127.0.0.1", port: Int, payload: String = "warren echo \(UInt32.random(in: 0...UInt32.max))\n",
                            timeout: Duration = .seconds(5)) throws -> Bool {
        try echo(host: host, port: port, payload: Array(payload.utf8), timeout: timeout)
    }

    /// Whether a TCP connect to 127.0.0.1:`port` succeeds (the socket is closed at once).
    public static func canConnect(port: Int, timeout: Duration = .seconds(2)) -> Bool {
        guard let fd = try? connect(port: port, timeout: timeout) else { return false }
        close(fd)
        return true
    }

    /// A connected socket to `host` (in 127.0.0.0/8):`port`; the caller closes it.
    public static func connect(host: String = "127.0.0.1", port: Int, timeout: Duration = .seconds(5)) throws -> Int32 {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let fd = try LoopbackSocket.make(nonBlocking: true)
        let rc = LoopbackSocket.withAddress(host: host, port: port) { Glibc.connect(fd, $0, $1) }
        if rc != 0 {
            guard errno == EINPROGRESS else {
                let error = errno
                close(fd)
                throw FixtureError("connect \(host):\(port)", errno: error)
            }
            guard LoopbackSocket.wait(fd, for: POLLOUT, until: deadline) else {
                close(fd)
                throw FixtureError("connect \(host):\(port) timed out", errno: ETIMEDOUT)
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else {
                close(fd)
                throw FixtureError("connect \(host):\(port)", errno: error)
            }
        }
        // Back to blocking; reads are guarded by poll with the deadline.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }
}
