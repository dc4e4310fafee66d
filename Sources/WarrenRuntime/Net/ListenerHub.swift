import CWarrenSpawn
import Foundation
import Synchronization
import WarrenCore

/// warren holds the listening sockets of local forwards, for the life of the
/// tunnel, instead of ssh: a client that connects while the tunnel's ssh is
/// down (killed, dropped by the bastion, restarting for a reload) waits
/// instead of being refused, and no other local user can take the port in
/// between. ssh runs as a master (`ControlMaster yes`, no `-L`); each accepted
/// connection is handed to it over its control socket as `ssh -S CONTROL -W
/// HOST:PORT` would (`MuxClient.stdioForwardRequest`, the descriptor passed by
/// SCM_RIGHTS): ssh opens the channel and copies the bytes; warren only
/// accepts, passes on and counts.
///
/// All listeners of the process live on one thread (`ListenerLoop`: one epoll
/// set of listeners and control connections), which never waits on anything
/// but epoll. Calls here only post commands to it.
public final class ListenerHub: Sendable {
    public static let shared = ListenerHub()

    /// A listener is known by where it listens: a reload that changes only
    /// the forward's target keeps it.
    public typealias Key = Forward.Endpoint

    /// Who a listener serves now: the tunnel's runner.
    struct Owner: Sendable {
        var tunnel: String
        /// The runner's own number: a runner's late word about a listener a
        /// newer runner holds (a reload) is ignored, and its connections are told apart.
        var generation: UInt64
        /// The forward's index in `TunnelConfig.forwards` (for its counts).
        var index: Int
        var target: Forward.Endpoint
        /// How long a connection may wait for ssh (the tunnel's connect_timeout).
        var waitLimit: Double
        var onCounts: @Sendable (Int, ListenerCounts) -> Void
    }

    /// Connections one listener keeps waiting at most; more stay in the
    /// kernel's backlog (they are not refused) until these are served.
    static let heldLimit = 256
    /// Handovers in flight at once per listener: a flood cannot make the
    /// master accept more control connections than this at a time.
    static let inFlightLimit = 32

    enum Command: Sendable {
        case attach(Key, ListenerSocket?, Owner)
        case route([Key], controlPath: String?, generation: UInt64)
        case refuse([Key], generation: UInt64)
        case drained(UInt64, CheckedContinuation<Void, Never>)
        case keepOnly(Set<Key>, CheckedContinuation<Void, Never>)
        case probe(Key, CheckedContinuation<ProbeOutcome, Never>)
    }

    /// The listeners bound, by key (read by callers to bind only once).
    private let bound = Mutex<Set<Key>>([])
    private let inbox = Mutex<(commands: [Command], started: Bool)>(([], false))
    private let wake: (read: Int32, write: Int32)

    private init() {
        var ends: [Int32] = [-1, -1]
        precondition(warren_pipe(&ends) == 0, "pipe failed: \(String(cString: strerror(errno)))")
        _ = fcntl(ends[0], F_SETFL, fcntl(ends[0], F_GETFL) | O_NONBLOCK)
        _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
        wake = (ends[0], ends[1])
    }

    /// Holds the listener at `key` for `owner`, binding it unless it is held
    /// already (a reload hands it to the new runner, keeping the socket).
    func hold(_ key: Key, owner: Owner) -> ListenerSocket.Failure? {
        let socket: ListenerSocket?
        if bound.withLock({ $0.contains(key) }) {
            socket = nil
        } else {
            switch ListenerSocket.bind(key) {
            case .failure(let failure): return failure
            case .success(let made): socket = made
            }
            bound.withLock { _ = $0.insert(key) }
        }
        post(.attach(key, socket, owner))
        return nil
    }

    /// Whether the hub holds `key` now.
    func holds(_ key: Key) -> Bool { bound.withLock { $0.contains(key) } }

    /// Connections to these listeners go to the master at `controlPath`; nil:
    /// its ssh is down, they wait.
    func route(_ keys: [Key], to controlPath: String?, generation: UInt64) {
        post(.route(keys, controlPath: controlPath, generation: generation))
    }

    /// The tunnel gave up (a failure that needs a human): waiting connections
    /// are closed, and new ones at once, until it is up again.
    func refuse(_ keys: [Key], generation: UInt64) { post(.refuse(keys, generation: generation)) }

    /// Returns once no client connection handed over for runner `generation` is open.
    func drained(_ generation: UInt64) async {
        await withCheckedContinuation { continuation in post(.drained(generation, continuation)) }
    }

    /// A number for each runner (see `Owner.generation`).
    static func nextGeneration() -> UInt64 { generations.add(1, ordering: .relaxed).newValue }
    private static let generations = Atomic<UInt64>(0)

    /// Closes every listener not in `keys` (removed or moved by a reload, or all at exit).
    /// Returns once they are closed (a unix socket's file removed).
    public func keepOnly(_ keys: Set<Key>) async {
        bound.withLock { $0.formIntersection(keys) }
        await withCheckedContinuation { continuation in post(.keepOnly(keys, continuation)) }
    }

    /// A channel open to the listener's target through its master, with no
    /// client: its answer is the probe's.
    func probe(_ key: Key) async -> ProbeOutcome {
        await withCheckedContinuation { continuation in post(.probe(key, continuation)) }
    }

    private func takeCommands() -> [Command] {
        inbox.withLock { inbox in
            defer { inbox.commands.removeAll(keepingCapacity: true) }
            return inbox.commands
        }
    }

    private func post(_ command: Command) {
        let start = inbox.withLock { inbox -> Bool in
            inbox.commands.append(command)
            defer { inbox.started = true }
            return !inbox.started
        }
        if start {
            let loop = ListenerLoop(wakeFD: wake.read, take: { [self] in takeCommands() })
            let thread = Thread { loop.run() }
            thread.name = "warren-listeners"
            thread.start()
        }
        var one: UInt8 = 1
        _ = write(wake.write, &one, 1)  // a full pipe wakes the loop all the same
    }
}
