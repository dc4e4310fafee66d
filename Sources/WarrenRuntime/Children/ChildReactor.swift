import CWarrenSpawn
import Foundation
import Synchronization
import WarrenCore

/// Every ssh child of the process, on one thread: it spawns them, reads their
/// stderr and log pipes, and reaps them, all through one epoll set. A thousand
/// idle children cost one thread asleep in `epoll_wait` with no timeout, and a
/// few hundred bytes each; nothing wakes while no child writes or ends.
///
/// Why not swift-subprocess for these: its `run` keeps one task per child
/// that wakes every second (Configuration.swift, a 1 s sleep loop around the
/// exit wait) and a 64 kB read buffer per child, which at a thousand tunnels
/// was most of the supervisor's idle CPU and memory. It also spawns from
/// whatever pool thread runs the task, and `PR_SET_PDEATHSIG` follows the
/// spawning *thread*: a pool thread that ends would kill its children. Here
/// every child is spawned from this one thread, which lives as long as the
/// process, so the death signal means "warren died" and needs no `setpriv`.
///
/// The child's end is its pidfd becoming readable; it is reaped here and
/// nowhere else, so a pid is signalled only while it is still this
/// process's unreaped child (`signal` and reaping share a lock).
final class ChildReactor: Sendable {
    static let shared = ChildReactor()

    /// What a spawn is asked to do; handed to the reactor thread.
    struct Request: Sendable {
        var launch: SSHLaunch
        var logFD: Int32?
        var control: ChildControl
        var onSpawn: @Sendable (Int32) -> Void
        var onOutput: @Sendable (SSHOutput) -> Void
        var done: CheckedContinuation<ChildOutcome, any Error>
    }

    /// How long stderr may stay open after ssh itself ended (a jump hop's ssh
    /// still holding it): then it is closed, and the run is over.
    static let lingerAfterExit: Duration = .seconds(2)

    private let epollFD: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let devNull: Int32
    private let pending = Mutex<[Request]>([])
    /// Children spawned and not yet reaped: the only pids `signal` may reach.
    private let unreaped = Mutex<Set<Int32>>([])

    private init() {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        var ends: [Int32] = [-1, -1]
        let piped = warren_pipe(&ends)
        devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        precondition(epollFD >= 0 && piped == 0 && devNull >= 0, "cannot set up the child reactor: \(String(cString: strerror(errno)))")
        (wakeRead, wakeWrite) = (ends[0], ends[1])
        _ = fcntl(wakeWrite, F_SETFL, fcntl(wakeWrite, F_GETFL) | O_NONBLOCK)
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: Token.wake.raw))
        epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeRead, &event)
        let thread = Thread { [self] in loop() }
        thread.name = "warren-children"
        thread.start()
    }

    /// Spawns `request.launch` on the reactor thread and returns when the child
    /// has ended and everything it wrote has been delivered.
    func run(_ launch: SSHLaunch, logFD: Int32?, control: ChildControl,
             onSpawn: @escaping @Sendable (Int32) -> Void,
             onOutput: @escaping @Sendable (SSHOutput) -> Void) async throws -> ChildOutcome {
        try await withCheckedThrowingContinuation { done in
            pending.withLock {
                $0.append(Request(launch: launch, logFD: logFD, control: control, onSpawn: onSpawn, onOutput: onOutput, done: done))
            }
            var one: UInt8 = 1
            _ = write(wakeWrite, &one, 1)  // a full wake pipe wakes the thread all the same
        }
    }

    /// Sends `signal` to the child `pid` (or its process group) if it is still
    /// an unreaped child of this process; otherwise does nothing.
    func signal(_ pid: Int32, _ signal: Int32, group: Bool) {
        unreaped.withLock { live in
            guard live.contains(pid) else { return }
            _ = kill(group ? -pid : pid, signal)
        }
    }

    // MARK: - The reactor thread

    /// What an epoll event is about: the wake pipe, or one descriptor of a child.
    private struct Token: Hashable {
        enum Kind: UInt64 { case wake = 0, stderr = 1, log = 2, exit = 3 }
        var child: UInt64
        var kind: Kind

        static let wake = Token(child: 0, kind: .wake)
        var raw: UInt64 { child << 2 | kind.rawValue }
        init(child: UInt64, kind: Kind) {
            self.child = child
            self.kind = kind
        }
        init(raw: UInt64) {
            self.init(child: raw >> 2, kind: Kind(rawValue: raw & 3)!)
        }
    }

    /// One running child; only the reactor thread touches it.
    private struct Child {
        var request: Request
        var pid: Int32
        var pidfd: Int32
        var stderrFD: Int32
        var stderrLines = LineSplitter(limit: SSHChild.lineLimit)
        var logLines = LineSplitter(limit: SSHChild.lineLimit)
        var outcome: ChildOutcome?
        var lingerUntil: ContinuousClock.Instant?

        var stderrIsLog: Bool { request.logFD == nil }
    }

    private func loop() -> Never {
        var children: [UInt64: Child] = [:]
        /// Children that ended while something still holds their stderr.
        var lingering = Set<UInt64>()
        var nextID: UInt64 = 1
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let timeout = Self.timeout(until: lingering.compactMap { children[$0]?.lingerUntil }.min())
            let count = events.withUnsafeMutableBufferPointer { epoll_wait(epollFD, $0.baseAddress, Int32($0.count), timeout) }
            if count < 0 {
                if errno == EINTR { continue }
                fatalError("epoll_wait failed in the child reactor: \(String(cString: strerror(errno)))")
            }
            var touched = Set<UInt64>()
            for event in events.prefix(Int(count)) {
                let token = Token(raw: event.data.u64)
                guard token.kind != .wake else { continue }
                guard var child = children[token.child] else { continue }
                switch token.kind {
                case .stderr: readStderr(&child, &buffer)
                case .log: readLog(&child, &buffer, all: false)
                case .exit: reap(&child)
                case .wake: break
                }
                children[token.child] = child
                touched.insert(token.child)
            }
            // Children whose stderr stayed open too long after ssh ended.
            let now = ContinuousClock.now
            for id in lingering {
                guard var child = children[id], child.lingerUntil.map({ $0 <= now }) != false else { continue }
                closeStderr(&child)
                children[id] = child
                touched.insert(id)
            }
            for id in touched {
                guard let child = children[id], child.outcome != nil else { continue }
                if child.stderrFD < 0 {
                    children[id] = nil
                    lingering.remove(id)
                    finish(child, &buffer)
                } else {
                    lingering.insert(id)
                }
            }
            // New spawns last: their first lines come on the next round, after onSpawn.
            var drain = [UInt8](repeating: 0, count: 64)
            while read(wakeRead, &drain, drain.count) > 0 {}
            for request in pending.withLock({ requests in
                defer { requests = [] }
                return requests
            }) {
                if let child = spawn(request, id: nextID) {
                    children[nextID] = child
                    nextID += 1
                }
            }
        }
    }

    private static func timeout(until deadline: ContinuousClock.Instant?) -> Int32 {
        guard let deadline else { return -1 }
        let left = deadline - .now
        guard left > .zero else { return 0 }
        return Int32(min(60_000, (left.seconds * 1000).rounded(.up)))
    }

    /// Spawns one child; on failure the request is answered at once.
    private func spawn(_ request: Request, id: UInt64) -> Child? {
        if request.control.isStopRequested {
            request.done.resume(returning: ChildOutcome(exitCode: nil, signal: nil))
            return nil
        }
        var pipeEnds: [Int32] = [-1, -1]
        guard warren_pipe(&pipeEnds) == 0 else {
            request.done.resume(throwing: SpawnError(step: "pipe", errno: errno))
            return nil
        }
        let (stderrRead, stderrWrite) = (pipeEnds[0], pipeEnds[1])
        var spawned = warren_spawned()
        let launch = request.launch
        let status = CStringArray([launch.executable] + launch.arguments).withPointers { argv in
            CStringArray(Self.environment(launch.environment)).withPointers { envp in
                launch.executable.withCString { path in
                    warren_spawn(path, argv, envp, devNull, devNull, stderrWrite, getpid(), OpenFileLimit.forChildren, &spawned)
                }
            }
        }
        close(stderrWrite)
        guard status == 0 else {
            close(stderrRead)
            let step = spawned.failed_step.map { String(cString: $0) } ?? "spawn"
            request.done.resume(throwing: SpawnError(step: step, errno: spawned.error))
            return nil
        }
        let pid = spawned.pid
        unreaped.withLock { _ = $0.insert(pid) }
        let control = request.control
        if let early = control.register(pid: pid, send: { [self] signal, group in self.signal(pid, signal, group: group) }) {
            signal(pid, early, group: early == SIGKILL)
        }
        request.onSpawn(pid)
        watch(stderrRead, Token(child: id, kind: .stderr))
        watch(spawned.pidfd, Token(child: id, kind: .exit))
        if let logFD = request.logFD { watch(logFD, Token(child: id, kind: .log)) }
        return Child(request: request, pid: pid, pidfd: spawned.pidfd, stderrFD: stderrRead)
    }

    private func watch(_ fd: Int32, _ token: Token) {
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: token.raw))
        epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event)
    }

    private func unwatch(_ fd: Int32) {
        epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
    }

    /// One read per ready descriptor per round, so a chatty child cannot starve the rest.
    private func readStderr(_ child: inout Child, _ buffer: inout [UInt8]) {
        let n = buffer.withUnsafeMutableBytes { read(child.stderrFD, $0.baseAddress, $0.count) }
        if n > 0 {
            let lines = child.stderrLines.append(buffer[..<n])
            deliver(lines, of: child, asLog: child.stderrIsLog)
        } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
            deliver(child.stderrLines.finish(), of: child, asLog: child.stderrIsLog)
            closeStderr(&child)
        }
    }

    private func closeStderr(_ child: inout Child) {
        guard child.stderrFD >= 0 else { return }
        unwatch(child.stderrFD)
        close(child.stderrFD)
        child.stderrFD = -1
        child.lingerUntil = nil
    }

    /// What ssh's log pipe holds; `all`: until it is empty (at the end of the run).
    private func readLog(_ child: inout Child, _ buffer: inout [UInt8], all: Bool) {
        guard let fd = child.request.logFD else { return }
        repeat {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return }
            deliver(child.logLines.append(buffer[..<n]), of: child, asLog: true)
        } while all
    }

    private func reap(_ child: inout Child) {
        var code: Int32 = -1
        var signalNumber: Int32 = -1
        let reaped = unreaped.withLock { live -> Int32 in
            let result = warren_reap(child.pid, &code, &signalNumber)
            if result != 0 { live.remove(child.pid) }
            return result
        }
        guard reaped != 0 else { return }  // the pidfd spoke early: wait for the next
        unwatch(child.pidfd)
        close(child.pidfd)
        child.pidfd = -1
        child.request.control.unregister()
        child.outcome = reaped == 1
            ? ChildOutcome(exitCode: code >= 0 ? code : nil, signal: signalNumber >= 0 ? signalNumber : nil)
            : ChildOutcome(exitCode: nil, signal: nil)
        if child.stderrFD >= 0 { child.lingerUntil = .now + Self.lingerAfterExit }
    }

    /// ssh has ended and its stderr is closed: the rest of its log, then the outcome.
    private func finish(_ child: Child, _ buffer: inout [UInt8]) {
        var child = child
        readLog(&child, &buffer, all: true)
        if let fd = child.request.logFD {
            deliver(child.logLines.finish(), of: child, asLog: true)
            unwatch(fd)
        }
        child.request.done.resume(returning: child.outcome ?? ChildOutcome(exitCode: nil, signal: nil))
    }

    private func deliver(_ lines: [String], of child: Child, asLog: Bool) {
        for line in lines { child.request.onOutput(asLog ? .log(line) : .server(line)) }
    }

    /// This process's environment with a launch's changes (nil removes).
    private static func environment(_ changes: [String: String?]) -> [String] {
        SSHLaunch.childEnvironment(changes).map { "\($0.key)=\($0.value)" }
    }
}

/// A spawn that failed before ssh ran.
public struct SpawnError: Error, CustomStringConvertible {
    public var step: String
    public var errno: Int32
    public var description: String { "\(step) failed: \(String(cString: strerror(errno)))" }
}

/// NULL-terminated C strings for argv and envp, freed after use.
private struct CStringArray {
    let strings: [String]
    init(_ strings: [String]) { self.strings = strings }

    func withPointers<R>(_ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
