import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn` for a test fixture.
///
/// The child gets a clean slate: an empty signal mask and every signal at its
/// default disposition (so it never inherits a blocked SIGTERM from a Swift
/// pool thread), stdin from /dev/null, stdout and stderr appended to a log
/// file, no file descriptor of ours beyond 0-2, and its own process group.
///
/// We are the parent, so we reap the child ourselves. Once it is reaped its pid
/// may belong to someone else: from then on `signal` does nothing.
public final class SpawnedProcess: Sendable {
    /// How a reaped child ended.
    public enum Termination: Sendable, Hashable, CustomStringConvertible {
        /// It called exit with this code.
        case exited(Int32)
        /// A signal with this number ended it.
        case signaled(Int32)
        /// Something else in this process reaped it first, so its status is lost.
        case reapedElsewhere

        /// The status as a shell reports it: the code, or 128 + the signal; -1 when lost.
        public var shellStatus: Int32 {
            switch self {
            case .exited(let code): code
            case .signaled(let sig): 128 + sig
            case .reapedElsewhere: -1
            }
        }

        public var description: String {
            switch self {
            case .exited(let code): "exit \(code)"
            case .signaled(let sig): "signal \(sig)"
            case .reapedElsewhere: "reaped elsewhere"
            }
        }
    }

    /// The child's pid; ours until it is reaped.
    public let pid: pid_t
    /// The program and its arguments, as asked for (without any `setpriv` wrapper).
    public let command: [String]
    /// Where the child's stdout and stderr go.
    public let logPath: String

    private let reaped = Mutex<Termination?>(nil)

    private init(pid: pid_t, command: [String], logPath: String) {
        self.pid = pid
        self.command = command
        self.logPath = logPath
    }

    /// Starts `path` with `args`.
    ///
    /// - Parameters:
    ///   - environment: the child's whole environment; `nil` passes ours on.
    ///   - log: file that receives stdout and stderr (created, appended to).
    ///   - diesWithTestProcess: run the child under `setpriv --pdeathsig KILL`
    ///     so it is killed if the test process dies without cleaning up (a crash,
    ///     a SIGKILL). `setpriv` execs the program, so `pid` is the program's.
    public static func spawn(
        _ path: String,
        _ args: [String],
        environment: [String: String]? = nil,
        log: String,
        diesWithTestProcess: Bool = true
    ) throws -> SpawnedProcess {
        guard access(path, X_OK) == 0 else {
            throw FixtureError("cannot execute \(path)", errno: errno)
        }
        var argv = [path] + args
        var program = path
        if diesWithTestProcess, access(setprivPath, X_OK) == 0 {
            argv = [setprivPath, "--pdeathsig", "KILL", "--"] + argv
            program = setprivPath
        }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let result = SpawnThread.shared.run { [program, argv] in
            spawnNow(program, argv: argv, env: env, log: log)
        }
        switch result {
        case .success(let pid):
            return SpawnedProcess(pid: pid, command: [path] + args, logPath: log)
        case .failure(let error):
            throw error
        }
    }

    /// How it ended, if it has ended; reaps it if it just did.
    public var termination: Termination? {
        reaped.withLock { state in
            if let state { return state }
            var status: Int32 = 0
            let got = waitpid(pid, &status, WNOHANG)
            if got == pid {
                state = Self.decode(status)
            } else if got < 0, errno == ECHILD {
                state = .reapedElsewhere
            }
            return state
        }
    }

    /// Whether it is still running. A zombie, or a reaped child, is dead.
    public var isAlive: Bool {
        if termination != nil { return false }
        guard let entry = ProcessTable.entry(pid) else { return false }
        return entry.state != "Z" && entry.state != "X"
    }

    /// Sends `sig` if the child is still ours (not yet reaped). Returns whether it was sent.
    @discardableResult
    public func signal(_ sig: Int32) -> Bool {
        reaped.withLock { state in
            // Holding the lock means nobody reaps it between the check and kill(2).
            state == nil && kill(pid, sig) == 0
        }
    }

    /// Waits for the child to end and reaps it; `nil` if it still runs after `timeout`.
    public func waitForTermination(timeout: Duration) -> Termination? {
        _ = waitUntil(timeout: timeout, every: .milliseconds(2)) { termination != nil }
        return termination
    }

    /// Waits for the child to end and returns its shell-style status (code, or
    /// 128 + signal); `nil` if it still runs after `timeout`.
    public func waitForExit(timeout: Duration) -> Int32? {
        waitForTermination(timeout: timeout)?.shellStatus
    }

    /// SIGTERM (and SIGCONT, in case it is stopped), up to `grace` to exit,
    /// then SIGKILL; always reaps. Safe to call on an ended child.
    @discardableResult
    public func terminate(grace: Duration = .seconds(2)) -> Termination {
        if let done = termination { return done }
        signal(SIGTERM)
        signal(SIGCONT)
        if let done = waitForTermination(timeout: grace) { return done }
        signal(SIGKILL)
        return waitForTermination(timeout: .seconds(30)) ?? .reapedElsewhere
    }

    /// The log file's content so far.
    public func logText() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    deinit {
        // A test that forgot to stop its child must not leave it behind.
        if termination == nil {
            signal(SIGKILL)
            _ = waitForTermination(timeout: .seconds(5))
        }
    }

    private static let setprivPath = "/usr/bin/setpriv"

    private static func decode(_ status: Int32) -> Termination {
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift cannot import.
        let low = status & 0x7f
        return low == 0 ? .exited((status >> 8) & 0xff) : .signaled(low)
    }

    private static func spawnNow(
        _ program: String, argv: [String], env: [String], log: String
    ) -> Result<pid_t, FixtureError> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        _ = addCloseFrom?(&actions, 3)

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setpgroup(&attr, 0)
        let flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP
        posix_spawnattr_setflags(&attr, Int16(flags))

        var pid: pid_t = 0
        let rc = withCStringArray(argv) { argvp in
            withCStringArray(env) { envp in
                posix_spawn(&pid, program, &actions, &attr, argvp, envp)
            }
        }
        guard rc == 0 else {
            return .failure(FixtureError("posix_spawn \(argv.joined(separator: " "))", errno: rc))
        }
        return .success(pid)
    }
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), looked up at run
/// time because Swift's Glibc module does not export GNU extensions. Without it
/// a child would inherit every descriptor not marked close-on-exec — e.g. a
/// pipe that `swift test` reads to its end, which would then never end.
private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
private let addCloseFrom: AddCloseFrom? = {
    guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
    return unsafeBitCast(symbol, to: AddCloseFrom.self)
}()

/// Calls `body` with a NULL-terminated C array of copies of `strings`.
func withCStringArray<R>(
    _ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R
) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
