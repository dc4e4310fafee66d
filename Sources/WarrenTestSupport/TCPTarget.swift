import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A real target service on 127.0.0.1, standing in for the database behind a
/// bastion. Plain sockets and one thread per connection.
///
/// `stop()` closes the listener and every open connection, so later connects
/// are refused; `start()` listens again on the same port. The counters let a
/// test assert that no byte reached the target.
public final class TCPTarget: Sendable {
    /// What the target does with a connection.
    public enum Behavior: Sendable {
        /// Sends every byte back.
        case echo
        /// Reads and counts bytes but never answers, like a hung server.
        case silent
        /// Closes each connection as soon as it is accepted.
        case closeOnAccept
    }

    /// The port it listens on, across stops and starts.
    public let port: Int
    public let behavior: Behavior

    private struct State {
        var listening = false
        /// Bumped by every start and stop; threads of an older generation wind down.
        var generation = 0
        var accepted = 0
        var received = 0
        var sent = 0
        var open = 0
    }

    private let state = Mutex(State())
    private let threads = DispatchGroup()

    private init(port: Int, behavior: Behavior) {
        self.port = port
        self.behavior = behavior
    }

    /// Starts a target on `port` (a free one when `nil`).
    public static func start(port: Int? = nil, behavior: Behavior = .echo) throws -> TCPTarget {
        let target = TCPTarget(port: try port ?? FreePort.find(), behavior: behavior)
        try target.start()
        return target
    }

    /// Listens again on the same port. Does nothing if it is listening.
    public func start() throws {
        try state.withLock { state in
            guard !state.listening else { return }
            let listener = try Self.listen(port: port)
            state.listening = true
            state.generation += 1
            let generation = state.generation
            threads.enter()
            Thread { [self] in acceptLoop(listener, generation) }.start()
        }
    }

    /// Closes the listener and all open connections; returns once they are closed.
    public func stop() {
        state.withLock { state in
            state.listening = false
            state.generation += 1
        }
        threads.wait()
    }

    /// Whether it is listening now.
    public var isListening: Bool { state.withLock { $0.listening } }
    /// Connections accepted since the target was created.
    public var acceptedConnections: Int { state.withLock { $0.accepted } }
    /// Bytes read from clients since the target was created.
    public var bytesReceived: Int { state.withLock { $0.received } }
    /// Bytes written to clients since the target was created.
    public var bytesSent: Int { state.withLock { $0.sent } }
    /// Connections open now.
    public var openConnections: Int { state.withLock { $0.open } }

    deinit {
        stop()
    }

    private func isCurrent(_ generation: Int) -> Bool {
        state.withLock { $0.generation == generation }
    }

    private func acceptLoop(_ listener: Int32, _ generation: Int) {
        defer {
            close(listener)
            threads.leave()
        }
        while isCurrent(generation) {
            guard Self.readable(listener) else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            state.withLock {
                $0.accepted += 1
                $0.open += 1
            }
            threads.enter()
            Thread { [self] in serve(connection, generation) }.start()
        }
    }

    private func serve(_ connection: Int32, _ generation: Int) {
        defer {
            close(connection)
            state.withLock { $0.open -= 1 }
            threads.leave()
        }
        if behavior == .closeOnAccept { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while isCurrent(generation) {
            guard Self.readable(connection) else { continue }
            let count = read(connection, &buffer, buffer.count)
            guard count > 0 else { return }
            state.withLock { $0.received += count }
            guard behavior == .echo else { continue }
            guard LoopbackSocket.writeAll(connection, buffer[..<count]) else { return }
            state.withLock { $0.sent += count }
        }
    }

    /// Waits up to 50 ms for `fd` to be readable, so loops notice a stop quickly.
    private static func readable(_ fd: Int32) -> Bool {
        LoopbackSocket.wait(fd, for: POLLIN, until: .now + .milliseconds(50))
    }

    private static func listen(port: Int) throws -> Int32 {
        let fd = try LoopbackSocket.make()
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        do {
            _ = try LoopbackSocket.bind(fd, port: port)
            guard Glibc.listen(fd, 64) == 0 else { throw FixtureError("listen on 127.0.0.1:\(port)", errno: errno) }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }
}
