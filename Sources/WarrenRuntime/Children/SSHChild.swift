import Foundation
import Synchronization
import WarrenCore

/// How to start one tunnel's ssh.
public struct SSHLaunch: Sendable, Equatable {
    public var executable: String
    public var arguments: [String]
    /// Changes to the inherited environment (nil removes a variable). By
    /// default ssh gets no agent, no askpass and no display: everything it
    /// uses comes from the generated file.
    public var environment: [String: String?] = SSHLaunch.isolated
    /// Where ssh logs (`-E`): a FIFO that SSHChild makes and reads, so that
    /// ssh's own words are kept apart from text the server sends. nil: ssh
    /// logs to stderr with everything else.
    public var logPath: String?

    public static let isolated: [String: String?] = ["SSH_AUTH_SOCK": nil, "SSH_ASKPASS": nil, "SSH_ASKPASS_REQUIRE": nil, "DISPLAY": nil]

    public init(executable: String, arguments: [String], environment: [String: String?] = SSHLaunch.isolated) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }

    /// `ssh -v -F <ssh_config> -N <alias>`. The child dies with the supervisor:
    /// it is spawned with `PR_SET_PDEATHSIG` (SIGKILL when warren dies, even by
    /// SIGKILL) from a thread that lives as long as warren, and exits at once
    /// if warren died before that request was made (see `ChildReactor`).
    ///
    /// `-v` (DEBUG1) is how warren knows when forwards are ready; it is passed on
    /// to ProxyJump hops. Every other setting comes from the generated file.
    ///
    /// With `logPath`, ssh logs there (`-E`), and so do its jump hops: the
    /// generated ProxyCommand passes `-E "$WARREN_SSH_LOG"`. `environment` is the
    /// tunnel's (its login method's agent or askpass; see `environment(for:askpassPath:)`).
    public static func make(
        ssh: String, sshConfig: String, alias: String, logPath: String? = nil,
        environment: [String: String?] = SSHLaunch.isolated
    ) -> SSHLaunch {
        let log = logPath.map { ["-E", $0] } ?? []
        var launch = SSHLaunch(executable: ssh, arguments: ["-v"] + log + ["-F", sshConfig, "-N", alias], environment: environment)
        if let logPath {
            launch.logPath = logPath
            launch.environment[SSHLaunch.logVariable] = logPath
        }
        return launch
    }

    /// The variable that tells a jump hop's ssh where to log (see the template's ProxyCommand).
    public static let logVariable = "WARREN_SSH_LOG"

    /// The log pipe lives in a private directory of its own, removed after the run.
    public var logDirectoryIsPrivate = false

    /// The same command with ssh's log (and its hops') sent to a pipe in a new
    /// private directory, so that a one-shot ssh (doctor, check) reads ssh's
    /// own words apart from the server's, as the supervisor does.
    public func loggingApart() throws -> SSHLaunch {
        var template = Array("/tmp/warren-ssh-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw LogPipeError(path: "/tmp/warren-ssh-XXXXXX", errno: errno)
        }
        let path = String(cString: made) + "/ssh.log"
        var launch = self
        launch.arguments = ["-E", path] + arguments
        launch.logPath = path
        launch.logDirectoryIsPrivate = true
        launch.environment[Self.logVariable] = path
        return launch
    }
}

/// One line of a child's output, told by where it came from.
public enum SSHOutput: Sendable, Equatable {
    /// A line of ssh's own log (with no log pipe: any stderr line).
    case log(String)
    /// Text on stderr that is not ssh's log: what the server sent (its
    /// banner). Data only: it never drives a tunnel's state.
    case server(String)

    public var text: String {
        switch self {
        case .log(let line), .server(let line): return line
        }
    }
}

/// How one ssh run ended.
public struct ChildOutcome: Sendable {
    /// The exit code, or nil when a signal ended it.
    public var exitCode: Int32?
    public var signal: Int32?
}

/// Lets other tasks signal a running child. The child is registered here from
/// its spawn until it is reaped; signals reach it only in between (the reactor
/// signals a pid only while it is an unreaped child of warren). A stop
/// asked for before the child exists is remembered: the child is then never
/// started, or stopped the moment it is.
public final class ChildControl: Sendable {
    private struct Registered: @unchecked Sendable {
        var send: @Sendable (Int32, Bool) -> Void
        var pid: Int32
    }
    private let registered = Mutex<Registered?>(nil)
    private let requested = Mutex<Int32?>(nil)
    private let stopWaiters = Mutex<[Int: CheckedContinuation<Void, Never>]>([:])
    private let nextWaiter = Mutex(0)

    public init() {}

    /// Returns the signal already asked for, to send at once.
    func register(pid: Int32, send: @escaping @Sendable (Int32, Bool) -> Void) -> Int32? {
        registered.withLock { $0 = Registered(send: send, pid: pid) }
        return requested.withLock { $0 }
    }

    func unregister() {
        registered.withLock { $0 = nil }
    }

    public var pid: Int32? { registered.withLock { $0?.pid } }

    /// Whether a stop was asked for: a child not yet started must not start.
    public var isStopRequested: Bool { requested.withLock { $0 != nil } }

    /// SIGTERM to ssh: it exits at once, with its last words on stderr.
    public func terminate() {
        request(SIGTERM, group: false)
    }

    /// SIGKILL to the child's process group (ssh and any jump-hop ssh it started).
    public func kill() {
        request(SIGKILL, group: true)
    }

    /// Carries out a teardown for a one-shot ssh (doctor, check); a tunnel's
    /// runner does the same through its machine's timers. Returns at once.
    public func stop(_ teardown: Teardown) {
        Task.detached { [self] in
            for step in teardown.steps {
                switch step {
                case .terminate: terminate()
                case .wait(let seconds): try? await Task.sleep(for: .seconds(seconds))
                case .killGroup: if pid != nil { kill() }
                }
            }
        }
    }

    private func request(_ signal: Int32, group: Bool) {
        requested.withLock { current in
            if current != SIGKILL { current = signal }
        }
        registered.withLock { $0 }?.send(signal, group)
        let waiters = stopWaiters.withLock { waiters in
            defer { waiters = [:] }
            return Array(waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once a stop was asked for (or the task is cancelled): for a
    /// run that is not a process (a shared connection's forwards).
    public func stopRequested() async {
        let id = nextWaiter.withLock { next -> Int in
            next += 1
            return next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // Registered under the lock that request() empties after setting the flag.
                let now = stopWaiters.withLock { waiters -> Bool in
                    if isStopRequested || Task.isCancelled { return true }
                    waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            stopWaiters.withLock { $0.removeValue(forKey: id) }?.resume()
        }
    }
}

public enum SSHChild {
    /// The longest line kept whole; a longer one (a 150 kB banner) is cut, never fatal.
    public static let lineLimit = 4096

    /// Runs ssh until it exits, handing every line to `onOutput` as it comes and
    /// reading to the very end (the last lines say why ssh died). `onSpawn` and
    /// `onOutput` run on the reactor thread: they must not block. Stop the child
    /// through `control`, never by cancelling this task. A stop asked for before
    /// the spawn means no spawn: the outcome is then exit code nil, signal nil.
    public static func run(
        _ launch: SSHLaunch, control: ChildControl,
        onSpawn: @escaping @Sendable (Int32) -> Void = { _ in },
        onOutput: @escaping @Sendable (SSHOutput) -> Void
    ) async throws -> ChildOutcome {
        let pipe = try launch.logPath.map { try SSHLogPipe(path: $0) }
        defer {
            pipe?.remove()
            if launch.logDirectoryIsPrivate, let path = launch.logPath { rmdir((path as NSString).deletingLastPathComponent) }
        }
        if control.isStopRequested { return ChildOutcome(exitCode: nil, signal: nil) }
        return try await ChildReactor.shared.run(launch, logFD: pipe?.fd, control: control, onSpawn: onSpawn, onOutput: onOutput)
    }
}
