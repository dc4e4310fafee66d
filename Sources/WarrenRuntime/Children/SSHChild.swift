import Foundation
import Subprocess
import Synchronization
import WarrenCore

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

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

    /// `ssh -v -F <ssh_config> -N <alias>`, wrapped so that the child dies with the
    /// supervisor: `setpriv --pdeathsig KILL` asks the kernel to SIGKILL it when
    /// its parent dies (even by SIGKILL), and a tiny shell guard closes the race
    /// where the parent died before that request was made, by checking that its
    /// parent is still the supervisor before exec'ing ssh.
    ///
    /// `-v` (DEBUG1) is how warren knows when forwards are ready; it is passed on
    /// to ProxyJump hops. Every other setting comes from the generated file.
    ///
    /// With `logPath`, ssh logs there (`-E`), and so do its jump hops: the
    /// generated ProxyCommand passes `-E "$WARREN_SSH_LOG"`. `environment` is the
    /// tunnel's (its login method's agent or askpass; see `environment(for:askpassPath:)`).
    public static func make(
        ssh: String, sshConfig: String, alias: String, setpriv: String?, supervisorPid: Int32, logPath: String? = nil,
        environment: [String: String?] = SSHLaunch.isolated
    ) -> SSHLaunch {
        let log = logPath.map { ["-E", $0] } ?? []
        var launch = make(ssh: ssh, arguments: ["-v"] + log + ["-F", sshConfig, "-N", alias], setpriv: setpriv, supervisorPid: supervisorPid)
        launch.environment = environment
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
    public func loggingApart(ssh: String) throws -> SSHLaunch {
        var template = Array("/tmp/warren-ssh-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw LogPipeError(path: "/tmp/warren-ssh-XXXXXX", errno: errno)
        }
        let path = String(cString: made) + "/ssh.log"
        var launch = self
        if executable == ssh {
            launch.arguments = ["-E", path] + arguments
        } else if let index = arguments.firstIndex(of: ssh) {
            launch.arguments.insert(contentsOf: ["-E", path], at: index + 1)
        } else {
            rmdir(String(cString: made))
            return self
        }
        launch.logPath = path
        launch.logDirectoryIsPrivate = true
        launch.environment[Self.logVariable] = path
        return launch
    }

    /// `ssh ARGUMENTS` in the same wrapper (`warren doctor` runs its checks this way).
    public static func make(ssh: String, arguments: [String], setpriv: String?, supervisorPid: Int32) -> SSHLaunch {
        let sshArguments = [ssh] + arguments
        guard let setpriv else { return SSHLaunch(executable: ssh, arguments: Array(sshArguments.dropFirst())) }
        let guardScript = "[ \"$PPID\" = \"$1\" ] || exit 70; shift; exec \"$@\""
        return SSHLaunch(
            executable: setpriv,
            arguments: ["--pdeathsig", "KILL", "--", "/bin/sh", "-c", guardScript, "warren-guard", String(supervisorPid)] + sshArguments)
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

/// Lets other tasks signal a running child. The child's execution is only valid
/// inside swift-subprocess's body, so it is registered here while the body runs
/// and removed before the body returns; signals go through its pidfd. A stop
/// asked for before the child exists is remembered: the child is then never
/// started, or stopped the moment it is.
public final class ChildControl: Sendable {
    private struct Registered: @unchecked Sendable {
        var send: @Sendable (Subprocess.Signal, Bool) -> Void
        var pid: Int32
    }
    private let registered = Mutex<Registered?>(nil)
    private let requested = Mutex<Subprocess.Signal?>(nil)
    private let stopWaiters = Mutex<[Int: CheckedContinuation<Void, Never>]>([:])
    private let nextWaiter = Mutex(0)

    public init() {}

    /// Returns the signal already asked for, to send at once.
    fileprivate func register(pid: Int32, send: @escaping @Sendable (Subprocess.Signal, Bool) -> Void) -> Subprocess.Signal? {
        registered.withLock { $0 = Registered(send: send, pid: pid) }
        return requested.withLock { $0 }
    }

    fileprivate func unregister() {
        registered.withLock { $0 = nil }
    }

    public var pid: Int32? { registered.withLock { $0?.pid } }

    /// Whether a stop was asked for: a child not yet started must not start.
    public var isStopRequested: Bool { requested.withLock { $0 != nil } }

    /// SIGTERM to ssh: it exits at once, with its last words on stderr.
    public func terminate() {
        request(.terminate, group: false)
    }

    /// SIGKILL to the child's process group (ssh and any jump-hop ssh it started).
    public func kill() {
        request(.kill, group: true)
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

    private func request(_ signal: Subprocess.Signal, group: Bool) {
        requested.withLock { current in
            if current != .kill { current = signal }
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
    /// reading to the very end (the last lines say why ssh died). Stop it
    /// through `control`, never by cancelling this task: cancelling would
    /// close stderr before the child's last words. A stop asked for before
    /// the spawn means no spawn: the outcome is then exit code nil, signal nil.
    public static func run(
        _ launch: SSHLaunch, control: ChildControl,
        onSpawn: @escaping @Sendable (Int32) -> Void = { _ in },
        onOutput: @escaping @Sendable (SSHOutput) -> Void
    ) async throws -> ChildOutcome {
        let pipe = try launch.logPath.map { path in
            try SSHLogPipe(path: path) { lines in
                for line in lines { onOutput(.log(line)) }
            }
        }
        defer {
            pipe?.drain()
            if launch.logDirectoryIsPrivate, let path = launch.logPath { rmdir((path as NSString).deletingLastPathComponent) }
        }
        if control.isStopRequested { return ChildOutcome(exitCode: nil, signal: nil) }
        let stderrIsLog = pipe == nil
        let result = try await Subprocess.run(configuration(launch), input: .none, output: .discarded, error: .sequence) { execution in
            let pid = execution.processIdentifier.value
            if let early = control.register(pid: pid, send: { signal, group in try? execution.send(signal: signal, toProcessGroup: group) }) {
                try? execution.send(signal: early, toProcessGroup: early == .kill)
            }
            onSpawn(pid)
            pipe?.start()
            var splitter = LineSplitter(limit: lineLimit)
            func take(_ lines: [String]) {
                for line in lines { onOutput(stderrIsLog ? .log(line) : .server(line)) }
            }
            do {
                for try await buffer in execution.standardError {
                    take(buffer.withUnsafeBytes { splitter.append($0) })
                }
                take(splitter.finish())
            } catch {
                // A child whose stderr cannot be read cannot be watched: end it
                // rather than lose track of it.
                onOutput(.log("warren: reading ssh's stderr failed: \(error)"))
                try? execution.send(signal: .kill, toProcessGroup: true)
            }
            control.unregister()
        }
        pipe?.drain()
        switch result.terminationStatus {
        case .exited(let code): return ChildOutcome(exitCode: code, signal: nil)
        case .signaled(let signal): return ChildOutcome(exitCode: nil, signal: signal)
        }
    }

    private static func configuration(_ launch: SSHLaunch) -> Configuration {
        var options = PlatformOptions()
        // Its own process group: a Ctrl-C in the terminal reaches warren only,
        // which then stops the children in order; SIGKILL reaches the hops too.
        options.processGroupID = 0
        let env = Environment.inherit.updating(launch.environment.reduce(into: [:]) { $0[.init(rawValue: $1.key)!] = $1.value })
        return Configuration(
            executable: .path(FilePath(launch.executable)), arguments: Arguments(launch.arguments),
            environment: env, platformOptions: options)
    }
}
