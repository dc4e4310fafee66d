import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A real SSH server on 127.0.0.1, with throwaway host and client keys in its
/// own temporary directory: OpenSSH's sshd (`/usr/sbin/sshd -D -e -f CONFIG`,
/// Debian's 9.2 unless `Options.sshdPath` names another build) or Dropbear
/// (`Options.program`, see SSHDServer+Dropbear.swift).
///
/// Use it as `let sshd = try SSHDServer.start(); defer { sshd.stop() }`, or
/// through `withSSHD { sshd in ... }`. `stop()` also runs when the object goes
/// away, so a test that throws halfway still leaves nothing behind.
///
/// The listener is our child; the per-connection sshd processes are its
/// children, found through /proc. Everything is killed leaves first, so each
/// dead process is reaped by its own parent instead of becoming a zombie that
/// this machine's PID 1 would never reap.
public final class SSHDServer: Sendable {
    /// A root-owned 0755 chain that `StrictModes yes` accepts (see `Options.strict()`).
    public static let secureParentDirectory = "/run/warren-tests"
    static let hostKeyName = "host_key"

    public let options: Options
    /// The server's own directory: keys, config, authorized_keys, log.
    public let directory: TemporaryDirectory
    /// The port it listens on, kept across `restart()`.
    public let port: Int
    /// The user a client logs in as: whoever runs the tests.
    public let user: String
    public let hostKeyPath: String
    public let clientKeyPath: String
    /// The client's public key line (`ssh-ed25519 AAAA... comment`).
    public let clientPublicKey: String
    public let authorizedKeysPath: String
    public let configPath: String
    /// sshd's stderr (`-e`), across restarts.
    public let logPath: String

    private struct State {
        var listener: SpawnedProcess?
        var hostKeyLine: String
        var frozen = false
        var removed = false
    }

    private let state: Mutex<State>

    private init(options: Options, directory: TemporaryDirectory, port: Int, user: String,
                 clientPublicKey: String, hostKeyLine: String, listener: SpawnedProcess) {
        self.options = options
        self.directory = directory
        self.port = port
        self.user = user
        self.hostKeyPath = directory.appending(Self.hostKeyName)
        self.clientKeyPath = directory.appending("client_key")
        self.clientPublicKey = clientPublicKey
        self.authorizedKeysPath = directory.appending(options.program.authorizedKeysName)
        self.configPath = directory.appending("sshd_config")
        self.logPath = directory.appending("sshd.log")
        state = Mutex(State(listener: listener, hostKeyLine: hostKeyLine))
    }

    /// Generates keys, writes the config, validates it with `sshd -t`, starts
    /// sshd and waits until it listens.
    ///
    /// - Throws: if openssh-server is missing (never a silent skip), if the
    ///   config is invalid, or if sshd does not listen in time (with its log).
    public static func start(_ options: Options = Options()) throws -> SSHDServer {
        guard access(options.sshdPath, X_OK) == 0 else {
            throw FixtureError("\(options.program.installHint) (\(options.sshdPath) is missing)")
        }
        // sshd's privilege separation directory; it refuses to start without it.
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        if options.parentDirectory == secureParentDirectory {
            try FileManager.default.createDirectory(atPath: secureParentDirectory, withIntermediateDirectories: true)
            chmod(secureParentDirectory, 0o755)
        }
        let directory = try TemporaryDirectory(prefix: "sshd-", in: options.parentDirectory)
        do {
            let hostKey = try makeHostKey(options.program, at: directory.appending(hostKeyName), comment: "warren-test-host")
            let clientKey = try SSHKeygen.generate(at: directory.appending("client_key"), comment: "warren-test-client")
            let prefix = options.authorizedKeyOptions.map { "\($0) " } ?? ""
            if options.program == .dropbear { try makeDropbearHome(directory) }
            try directory.write(prefix + clientKey + "\n", to: options.program.authorizedKeysName)
            let user = String(cString: getpwuid(geteuid()).pointee.pw_name)
            var attempt = 1
            while true {
                let port = try options.port ?? FreePort.find()
                do {
                    let listener = try launch(options: options, directory: directory, port: port)
                    return SSHDServer(options: options, directory: directory, port: port, user: user,
                                      clientPublicKey: clientKey, hostKeyLine: SSHKeygen.keyWithoutComment(hostKey),
                                      listener: listener)
                } catch is PortTaken where options.port == nil && attempt < 3 {
                    attempt += 1  // someone took the free port first: try another
                }
            }
        } catch {
            directory.remove()
            throw error
        }
    }

    /// The public host key, `ssh-ed25519 AAAA...` (changes on `rotateHostKey()`).
    public var hostKeyLine: String { state.withLock { $0.hostKeyLine } }
    /// The listening sshd's pid while it runs.
    public var listenerPID: pid_t? { state.withLock { $0.listener?.pid } }
    /// Whether `freezeConnections()` is in force.
    public var isFrozen: Bool { state.withLock { $0.frozen } }
    func setFrozen(_ frozen: Bool) { state.withLock { $0.frozen = frozen } }
    /// Whether the listener runs (it may be frozen).
    public var isRunning: Bool { state.withLock { $0.listener?.isAlive ?? false } }

    /// The whole log so far.
    public func logText() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Waits until the log contains `text`.
    public func waitForLog(containing text: String, timeout: Duration = .seconds(10)) -> Bool {
        waitUntil(timeout: timeout) { logText().contains(text) }
    }

    /// Kills every connection and the listener, and removes the directory.
    /// Safe to call more than once.
    public func stop() {
        state.withLock { state in
            stopListener(&state)
            if !state.removed {
                directory.remove()
                state.removed = true
            }
        }
    }

    /// Kills every connection and the listener but keeps the files, so that
    /// `restart()` can bring the same bastion back: a bastion that went down.
    ///
    /// Unlike `stop()`, the listener is stopped (SIGSTOP) before the sessions
    /// are killed, so a client that reconnects at once cannot slip in a new
    /// session whose sshd would outlive the listener; the sessions' processes
    /// are then left to be reaped once the listener is gone.
    public func halt() {
        state.withLock { state in
            guard let listener = state.listener else { return }
            state.listener = nil
            state.frozen = false
            listener.signal(SIGSTOP)
            _ = waitUntil(timeout: .seconds(2)) { ProcessTable.entry(listener.pid).map { $0.state == "T" || $0.isZombie } ?? true }
            let sessions = ProcessTable.descendants(of: listener.pid)
            Self.killTree(below: listener.pid, waitForReaping: false)
            listener.terminate(grace: .seconds(2))
            for entry in sessions where !entry.isZombie { ProcessTable.signal(entry, SIGKILL) }
            _ = waitUntil(timeout: .seconds(5)) { sessions.allSatisfy { !ProcessTable.exists($0.pid) } }
        }
    }

    /// Drops every connection, stops the listener and starts a new one on the
    /// same port with the same keys: a bastion that rebooted.
    public func restart() throws {
        try state.withLock { state in
            stopListener(&state)
            state.listener = try Self.launch(options: options, directory: directory, port: port)
        }
    }

    /// Replaces the host key with a new one and restarts: clients that pinned
    /// the old key now fail host key verification. Returns the new `hostKeyLine`.
    @discardableResult
    public func rotateHostKey() throws -> String {
        try state.withLock { state in
            stopListener(&state)
            let line = try Self.makeHostKey(options.program, at: hostKeyPath, comment: "warren-test-host-rotated")
            state.hostKeyLine = SSHKeygen.keyWithoutComment(line)
            state.listener = try Self.launch(options: options, directory: directory, port: port)
            return state.hostKeyLine
        }
    }

    /// Replaces authorized_keys with `lines` (the server reads it on each login).
    public func setAuthorizedKeys(_ lines: [String]) throws {
        try directory.write(lines.map { $0 + "\n" }.joined(), to: options.program.authorizedKeysName)
    }

    deinit {
        stop()
    }

    /// Thaws, kills the connections leaves first, then terminates and reaps the listener.
    private func stopListener(_ state: inout State) {
        guard let listener = state.listener else { return }
        state.listener = nil
        if state.frozen {
            Self.thaw(listener.pid)
            state.frozen = false
        }
        Self.killTree(below: listener.pid, waitForReaping: true)
        // A connection accepted in the last instant would be orphaned by the
        // listener's exit: note it now, kill it after.
        let late = ProcessTable.descendants(of: listener.pid)
        listener.terminate(grace: .seconds(2))
        for entry in late where !entry.isZombie {
            ProcessTable.signal(entry, SIGKILL)
        }
    }

    /// The server found its port taken (the free port was grabbed by someone else).
    struct PortTaken: Error {}

    /// A host key pair at `path` made by the server's own tool; returns its public line.
    private static func makeHostKey(_ program: Program, at path: String, comment: String) throws -> String {
        switch program {
        case .openSSH: try SSHKeygen.generate(at: path, comment: comment)
        case .dropbear: try DropbearKey.generate(at: path)
        }
    }

    /// Starts the server and waits until it listens: sshd after validating
    /// its config, Dropbear in a mount namespace of its own.
    private static func launch(options: Options, directory: TemporaryDirectory, port: Int) throws -> SpawnedProcess {
        switch options.program {
        case .openSSH: try launchSSHD(options: options, directory: directory, port: port)
        case .dropbear: try launchDropbear(options: options, directory: directory, port: port)
        }
    }

    /// Validates the config, starts sshd and waits for `Server listening on 127.0.0.1 port N.`.
    /// It never connects to find out: an sshd since 9.8 penalises the source
    /// address of a connection that ends before authentication.
    private static func launchSSHD(options: Options, directory: TemporaryDirectory, port: Int) throws -> SpawnedProcess {
        let config = try directory.write(options.render(port: port, directory: directory.path), to: "sshd_config")
        let check = try SpawnedProcess.run(options.sshdPath, ["-t", "-f", config], log: directory.appending("sshd-t.log"))
        guard check.status == 0 else {
            throw FixtureError("sshd -t -f \(config) failed (exit \(check.status)):\n\(check.output)\nconfig:\n\(options.render(port: port, directory: directory.path))")
        }
        let log = directory.appending("sshd.log")
        let offset = (try? FileManager.default.attributesOfItem(atPath: log)[.size] as? Int) ?? 0
        let listener = try SpawnedProcess.spawn(options.sshdPath, ["-D", "-e", "-f", config], log: log)
        let ready = "Server listening on 127.0.0.1 port \(port)."
        var output = ""
        let listening = waitUntil(timeout: options.readyTimeout, every: .milliseconds(2)) {
            output = String(listener.logText().utf8.dropFirst(offset)) ?? ""
            return output.contains(ready) || !listener.isAlive
        } && output.contains(ready)
        if listening { return listener }
        let how = listener.terminate(grace: .seconds(1))
        if output.contains("Address already in use") { throw PortTaken() }
        throw FixtureError("sshd did not listen on 127.0.0.1:\(port) within \(options.readyTimeout) (\(how)); its log:\n\(output)")
    }
}
