import CWarrenSpawn
import Foundation
import WarrenCore

/// The thread of `ListenerHub`: every listener and every control connection
/// of the process in one epoll set. It accepts, holds connections while a
/// tunnel's ssh is down, hands them over in order once it is up, reads the
/// master's answers and counts. Only this thread touches its state
/// (`@unchecked Sendable`: handed to the thread once, at its start).
final class ListenerLoop: @unchecked Sendable {
    struct Held {
        var fd: Int32
        var since: Double
        var waited: Bool
    }

    final class Listener {
        let key: ListenerHub.Key
        var socket: ListenerSocket
        var owner: ListenerHub.Owner?
        var route: String?
        /// After a control connect failed: not before this time again.
        var retryAt = 0.0
        var held: [Held] = []
        var inFlight = 0
        var open = 0
        var accepting = false
        var closed = false
        /// The tunnel gave up: connections are closed as they come, until it is up.
        var refusing = false
        var counts = ListenerCounts()
        var dirty = true

        init(key: ListenerHub.Key, socket: ListenerSocket) {
            self.key = key
            self.socket = socket
        }
    }

    /// A control connection waiting for the master's answer.
    struct Handover {
        var listener: ObjectIdentifier
        var client: Held?
        var probe: (end: Int32, reply: CheckedContinuation<ProbeOutcome, Never>)?
        var buffer: [UInt8] = []
        var deadline: Double
        /// The request's id (one request per control connection).
        var id: UInt32 = 0
        var generation: UInt64 = 0
    }

    let epollFD: Int32
    let wakeFD: Int32
    let take: @Sendable () -> [ListenerHub.Command]
    var listeners: [ObjectIdentifier: Listener] = [:]
    var byKey: [ListenerHub.Key: Listener] = [:]
    /// Each listening descriptor's listener.
    var listening: [Int32: Listener] = [:]
    var handovers: [Int32: Handover] = [:]
    /// Control connections of open client connections (their end is the
    /// client's), with the generation of the runner they were handed over for.
    var openConnections: [Int32: (listener: ObjectIdentifier, generation: UInt64)] = [:]
    var openByGeneration: [UInt64: Int] = [:]
    var drainWaiters: [UInt64: [CheckedContinuation<Void, Never>]] = [:]
    var nextID: UInt32 = 0

    enum Kind: UInt64 { case wake = 0, listener = 1, control = 2 }

    init(wakeFD: Int32, take: @escaping @Sendable () -> [ListenerHub.Command]) {
        self.wakeFD = wakeFD
        self.take = take
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epollFD >= 0, "epoll_create1: \(String(cString: strerror(errno)))")
        watch(wakeFD, .wake)
    }

    static func now() -> Double { (ContinuousClock.now - origin) / .seconds(1) }
    static let origin = ContinuousClock.now

    func run() -> Never {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        var drain = [UInt8](repeating: 0, count: 256)
        while true {
            let count = epoll_wait(epollFD, &events, Int32(events.count), timeoutMilliseconds())
            for index in 0..<max(0, Int(count)) {
                let raw = events[index].data.u64
                let fd = Int32(truncatingIfNeeded: raw >> 2)
                switch Kind(rawValue: raw & 3) {
                case .wake: while read(wakeFD, &drain, drain.count) > 0 {}
                case .listener: if let listener = listening[fd] { accept(listener, from: fd) }
                case .control: controlReadable(fd)
                case nil: break
                }
            }
            for command in take() { perform(command) }
            let now = Self.now()
            expire(at: now)
            for listener in listeners.values { pump(listener, at: now) }
            notify()
        }
    }

    // MARK: - Commands

    func perform(_ command: ListenerHub.Command) {
        switch command {
        case .attach(let key, let socket, let owner):
            let listener: Listener
            if let existing = byKey[key] {
                listener = existing
            } else {
                guard let socket else { return }
                listener = Listener(key: key, socket: socket)
                byKey[key] = listener
                listeners[ObjectIdentifier(listener)] = listener
            }
            listener.owner = owner
            listener.dirty = true
            setAccepting(listener, true)
        case .route(let keys, let path, let generation):
            for key in keys {
                guard let listener = byKey[key], listener.owner?.generation == generation else { continue }
                listener.route = path
                listener.retryAt = 0
                if path != nil { listener.refusing = false }
            }
        case .refuse(let keys, let generation):
            for key in keys {
                guard let listener = byKey[key], listener.owner?.generation == generation else { continue }
                listener.refusing = true
                dropHeld(listener)
            }
        case .drained(let generation, let waiter):
            if openByGeneration[generation, default: 0] == 0 { waiter.resume() } else { drainWaiters[generation, default: []].append(waiter) }
        case .keepOnly(let keys, let done):
            defer { done.resume() }
            for (key, listener) in byKey where !keys.contains(key) {
                setAccepting(listener, false)
                listener.socket.close()
                listener.closed = true
                dropHeld(listener)
                byKey[key] = nil
                forget(listener)
            }
        case .probe(let key, let reply):
            guard let listener = byKey[key], let target = listener.owner?.target, let path = listener.route else {
                reply.resume(returning: .failed(message: "the tunnel's ssh is not up", closedAfter: nil))
                return
            }
            var ends: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
                reply.resume(returning: .failed(message: "socketpair: \(String(cString: strerror(errno)))", closedAfter: nil))
                return
            }
            let started = handOver(ends[1], to: path, target: target, listener: listener,
                                   .init(listener: ObjectIdentifier(listener), probe: (ends[0], reply), deadline: Self.now() + (listener.owner?.waitLimit ?? 10)))
            close(ends[1])  // the master has its own copies now
            if let failure = started {
                close(ends[0])
                reply.resume(returning: .failed(message: "cannot reach the tunnel's ssh: \(failure)", closedAfter: nil))
            }
        }
    }

    // MARK: - Accepting and handing over

    func accept(_ listener: Listener, from fd: Int32) {
        let now = Self.now()
        while listener.held.count < ListenerHub.heldLimit {
            let client = warren_accept(fd)
            guard client >= 0 else { break }
            if listener.refusing {
                close(client)
                listener.counts.dropped += 1
                listener.dirty = true
                continue
            }
            // Waits when its ssh is down or busy coming back; counted once.
            let waits = listener.route == nil || listener.retryAt > now
            if waits { listener.counts.waited += 1; listener.dirty = true }
            listener.held.append(Held(fd: client, since: now, waited: waits))
        }
        if listener.held.count >= ListenerHub.heldLimit { setAccepting(listener, false) }
    }

    /// Hands waiting connections over, in order, while the master takes them.
    func pump(_ listener: Listener, at now: Double) {
        guard let path = listener.route, let target = listener.owner?.target, listener.retryAt <= now else { return }
        while !listener.held.isEmpty, listener.inFlight < ListenerHub.inFlightLimit {
            let client = listener.held.removeFirst()
            let failure = handOver(client.fd, to: path, target: target, listener: listener,
                                   .init(listener: ObjectIdentifier(listener), client: client, deadline: now + (listener.owner?.waitLimit ?? 10)))
            if failure != nil {
                // The master does not answer (it just died, or its backlog is full): wait for it.
                listener.held.insert(client, at: 0)
                if !client.waited { listener.held[0].waited = true; listener.counts.waited += 1; listener.dirty = true }
                listener.retryAt = now + 0.05
                break
            }
        }
        if !listener.accepting, !listener.closed, listener.held.count < ListenerHub.heldLimit { setAccepting(listener, true) }
    }

    /// Opens a control connection and sends the request and the descriptor
    /// (twice: stdin and stdout). Returns why not, or nil once it is sent.
    func handOver(_ fd: Int32, to path: String, target: Forward.Endpoint, listener: Listener, _ handover: Handover) -> String? {
        guard var address = ListenerSocket.unixAddress(path) else { return "the control path is too long" }
        let control = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard control >= 0 else { return String(cString: strerror(errno)) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(control, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        nextID &+= 1
        let request = MuxClient.stdioForwardRequest(id: nextID, to: target)
        var failure: String?
        if connected != 0 {
            failure = "connect: \(String(cString: strerror(errno)))"
        } else if request.withUnsafeBytes({ send(control, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) != request.count {
            failure = "send: \(String(cString: strerror(errno)))"
        } else if MuxClient.sendDescriptor(fd, over: control) != 0 || MuxClient.sendDescriptor(fd, over: control) != 0 {
            failure = "cannot pass the connection"
        }
        if let failure {
            close(control)
            return failure
        }
        var handover = handover
        handover.id = nextID
        handover.generation = listener.owner?.generation ?? 0
        handovers[control] = handover
        listener.inFlight += 1
        watch(control, .control)
        return nil
    }

    func controlReadable(_ fd: Int32) {
        var chunk = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
        if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
        if let (id, generation) = openConnections[fd] {
            guard n <= 0 else { return }  // nothing is expected once the channel is open
            openConnections[fd] = nil
            unwatchAndClose(fd)
            connectionEnded(generation)
            if let listener = listeners[id] {
                listener.open -= 1
                listener.counts.open = listener.open
                listener.dirty = true
                forgetIfDone(listener)
            }
            return
        }
        guard var handover = handovers[fd] else { return }
        if n > 0 { handover.buffer += chunk[0..<n] }
        var answer: MuxClient.StdioAnswer?
        if n <= 0 {
            answer = nil
        } else if let packets = MuxClient.takePackets(&handover.buffer) {
            answer = MuxClient.stdioAnswer(to: handover.id, packets)
            if answer == nil { handovers[fd] = handover; return }
        } else {
            answer = .refused("a malformed packet from the master")
        }
        handovers[fd] = nil
        finish(handover, control: fd, answer)
    }

    /// The master answered (or its connection ended: `answer` nil).
    func finish(_ handover: Handover, control fd: Int32, _ answer: MuxClient.StdioAnswer?) {
        guard let listener = listeners[handover.listener] else {
            unwatchAndClose(fd)
            if let client = handover.client { close(client.fd) }
            return
        }
        listener.inFlight -= 1
        listener.dirty = true
        if let (end, reply) = handover.probe {
            unwatchAndClose(fd)
            close(end)
            // A probe the master answered counts; one its end interrupted does not.
            if answer != nil { listener.counts.probes += 1 }
            switch answer {
            case .opened: reply.resume(returning: .answered)
            case .refused(let why):
                listener.counts.probeFailures += 1
                reply.resume(returning: .failed(message: "the bastion refused a channel to \(listener.owner?.target.description ?? "the target"): \(why)", closedAfter: nil))
            case nil:
                reply.resume(returning: .failed(message: "the tunnel's ssh ended during the probe", closedAfter: nil))
            }
            forgetIfDone(listener)
            return
        }
        guard var client = handover.client else { return }
        switch answer {
        case .opened:
            // ssh holds the connection now; warren keeps only the control connection, whose end is the connection's.
            close(client.fd)
            openConnections[fd] = (handover.listener, handover.generation)
            openByGeneration[handover.generation, default: 0] += 1
            listener.open += 1
            listener.counts.open = listener.open
            listener.counts.opened += 1
        case .refused:
            unwatchAndClose(fd)
            close(client.fd)
            listener.counts.failed += 1
        case nil:
            // The master ended before answering: the client saw nothing yet; it waits for the next one, first in line.
            unwatchAndClose(fd)
            if !client.waited { client.waited = true; listener.counts.waited += 1 }
            if listener.closed {
                close(client.fd)
                listener.counts.dropped += 1
            } else {
                listener.held.insert(client, at: 0)
                listener.retryAt = Self.now() + 0.05
            }
        }
        forgetIfDone(listener)
    }
}
