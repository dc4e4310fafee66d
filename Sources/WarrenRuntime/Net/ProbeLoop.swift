import Foundation
import Synchronization
import WarrenCore

/// One thread that carries every target probe of the process: non-blocking
/// connects and the wait that follows, all in one `poll()`, each probe with its
/// own deadline. A thousand tunnels probing cost one thread, not a thousand;
/// with nothing in flight the thread sleeps in `poll()` without a timeout, so
/// an idle supervisor is not woken by it.
final class ProbeLoop: Sendable {
    /// The process-wide loop; its thread starts with the first probe and then
    /// lives as long as the process.
    static let shared = ProbeLoop()

    /// One probe handed to the loop: where to connect, in order, and for how long.
    struct Request: Sendable {
        var addresses: [NetworkCheck.Address]
        var endpoint: String
        /// Seconds each connect may take.
        var connectTimeout: Double
        /// Seconds the connection must stay open to count as reachable.
        var wait: Double
        var continuation: CheckedContinuation<ProbeResult, Never>
    }

    private struct Inbox {
        var requests: [Request] = []
        var started = false
    }

    private let inbox = Mutex(Inbox())
    /// A pipe whose write end wakes the loop when a request arrives.
    private let wakeFD: Int32
    private let wakeWriteFD: Int32

    private init() {
        var ends: [Int32] = [-1, -1]
        precondition(pipe(&ends) == 0, "pipe failed: \(String(cString: strerror(errno)))")
        for fd in ends {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        (wakeFD, wakeWriteFD) = (ends[0], ends[1])
    }

    func submit(_ request: Request) {
        let startThread = inbox.withLock { inbox in
            inbox.requests.append(request)
            defer { inbox.started = true }
            return !inbox.started
        }
        if startThread {
            let thread = Thread { [self] in run() }
            thread.name = "warren-probes"
            thread.start()
        }
        var one: UInt8 = 1
        _ = write(wakeWriteFD, &one, 1)  // a full pipe already wakes the loop
    }

    // MARK: - The loop (its own thread only)

    private func run() {
        // Both arrays keep their storage and each probe is changed in place:
        // a thousand tunnels' probes in flight cost no copying per wake-up.
        var probes: [InFlight] = []
        var fds: [pollfd] = []
        var drain = [UInt8](repeating: 0, count: 256)
        while true {
            let arrived = inbox.withLock { inbox in
                defer { inbox.requests.removeAll(keepingCapacity: true) }
                return inbox.requests
            }
            for request in arrived {
                var probe = InFlight(request: request)
                if probe.connectNext(now: Self.now()) { probes.append(probe) }
            }
            fds.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0))
            var earliest = Double.infinity
            for index in probes.indices {
                fds.append(pollfd(fd: probes[index].fd, events: probes[index].events, revents: 0))
                earliest = min(earliest, probes[index].deadline)
            }
            let timeout = earliest.isFinite ? max(0, Int32(((earliest - Self.now()) * 1000).rounded(.up))) : -1
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 && errno != EINTR {
                fatalError("poll failed in the probe loop: \(String(cString: strerror(errno)))")
            }
            if fds[0].revents != 0 {
                while read(wakeFD, &drain, drain.count) > 0 {}
            }
            let now = Self.now()
            var kept = 0
            for index in probes.indices {
                guard probes[index].advance(revents: fds[index + 1].revents, now: now) else { continue }
                if kept != index { probes.swapAt(kept, index) }
                kept += 1
            }
            probes.removeLast(probes.count - kept)
        }
    }

    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

/// A probe the loop is working on: connecting to one of its addresses, or
/// connected and watching whether the far end closes.
private struct InFlight {
    enum Stage { case connecting, watching }

    let request: ProbeLoop.Request
    var next = 0
    var fd: Int32 = -1
    var stage = Stage.connecting
    var deadline = 0.0

    init(request: ProbeLoop.Request) {
        self.request = request
    }

    var events: Int16 { Int16(stage == .connecting ? POLLOUT : POLLIN) }

    /// Starts a connect to the next address; false once the probe has its
    /// result (and the continuation was resumed).
    mutating func connectNext(now: Double) -> Bool {
        while next < request.addresses.count {
            let address = request.addresses[next]
            next += 1
            let socket = Glibc.socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard socket >= 0 else { continue }
            let rc = address.storage.withUnsafeBytes { raw in
                Glibc.connect(socket, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
            }
            if rc == 0 || errno == EINPROGRESS {
                fd = socket
                stage = rc == 0 ? .watching : .connecting
                deadline = now + (rc == 0 ? request.wait : request.connectTimeout)
                return true
            }
            close(socket)
        }
        finish(.notListening("nothing accepts connections on \(request.endpoint)"))
        return false
    }

    /// Acts on what poll() reported, or on the deadline; false once finished.
    mutating func advance(revents: Int16, now: Double) -> Bool {
        switch stage {
        case .connecting:
            if revents != 0 {
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                if error == 0 {
                    stage = .watching
                    deadline = now + request.wait
                    return true
                }
            } else if now < deadline {
                return true
            }
            close(fd)
            fd = -1
            return connectNext(now: now)
        case .watching:
            if revents == 0 {
                if now < deadline { return true }
                finish(.reachable)
                return false
            }
            var byte: UInt8 = 0
            let n = recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return true }
            finish(n > 0 ? .reachable : .unreachable(
                "a connection through \(request.endpoint) was accepted and then closed: the bastion could not reach the target"))
            return false
        }
    }

    mutating func finish(_ result: ProbeResult) {
        if fd >= 0 { close(fd) }
        fd = -1
        request.continuation.resume(returning: result)
    }
}
