import Foundation
import WarrenCore
#if canImport(Glibc)
import Glibc
#endif

/// One integration test's world, in one place: a temporary directory, the
/// sshds and targets the test starts through it, a warren config
/// (`<directory>/warren.toml`) and state directory (`<directory>/state`), the
/// real `warren` binary run against them, and the `warren run` supervisors and
/// other processes it starts.
///
/// `stop()` ends everything the lab started, by pid, supervisors first and
/// sshds last, and removes its directories. It runs from deinit too, but a
/// test should say `defer { lab.stop() }` (or use `withLab`): Swift may end an
/// object's life before the end of its scope.
///
/// The special set-ups are extensions: `Lab.bastion(...)` (tunnel `db`
/// through one sshd), `Lab.conditions(...)` (one tunnel in each condition
/// `warren check` tells apart), `Lab.fleet(...)` (several shards on one sshd).
public final class Lab {
    /// The lab's own directory: config, state, logs, keys.
    public let directory: TemporaryDirectory
    /// `<directory>/warren.toml`, what `warren(_:)` runs against.
    public let configPath: String
    /// `<directory>/state`, the state directory supervisors use unless told otherwise.
    public let stateDir: String
    /// Every sshd started, in order; `sshd` is the first.
    public private(set) var sshds: [SSHDServer] = []
    /// Every target started, in order; `target` is the first.
    public private(set) var targets: [TCPTarget] = []
    /// The ssh client warren runs (`ssh_binary`, written at the top of every
    /// config the lab writes or starts a supervisor with); warren's own
    /// choice (ssh on PATH) when nil.
    public let sshBinary: String?
    /// The local port of each tunnel whose forward the lab wrote into the config.
    public internal(set) var localPorts: [String: Int] = [:]
    /// Every supervisor started, in order, under the name it was started with.
    private(set) var started: [(name: String, supervisor: WarrenSupervisor)] = []
    private var processes: [SpawnedProcess] = []
    private var directories: [TemporaryDirectory] = []
    private var stopped = false

    /// A lab in a new `/tmp/<prefix>XXXXXX`. With `sshd` options (the default)
    /// it starts an sshd and an echo target behind it; with `nil` it is only
    /// the directory, and the test starts what it needs. `sshBinary` is the
    /// client warren runs (see `sshBinary`).
    public init(prefix: String = "lab-", sshd options: SSHDServer.Options? = SSHDServer.Options(), sshBinary: String? = nil) throws {
        self.sshBinary = sshBinary
        directory = try TemporaryDirectory(prefix: prefix)
        configPath = directory.appending("warren.toml")
        stateDir = directory.appending("state")
        guard let options else { return }
        do {
            try startSSHD(options)
            try startTarget()
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    // MARK: - What it starts

    /// The first sshd the lab started.
    public var sshd: SSHDServer {
        guard let first = sshds.first else { preconditionFailure("this lab started no sshd") }
        return first
    }

    /// The first target the lab started.
    public var target: TCPTarget {
        guard let first = targets.first else { preconditionFailure("this lab started no target") }
        return first
    }

    /// Starts another sshd, stopped with the lab.
    @discardableResult
    public func startSSHD(_ options: SSHDServer.Options = SSHDServer.Options()) throws -> SSHDServer {
        let sshd = try SSHDServer.start(options)
        sshds.append(sshd)
        return sshd
    }

    /// Starts another target on `port` (a free one when nil), stopped with the lab.
    @discardableResult
    public func startTarget(port: Int? = nil, behavior: TCPTarget.Behavior = .echo) throws -> TCPTarget {
        let target = try TCPTarget.start(port: port, behavior: behavior)
        targets.append(target)
        return target
    }

    /// Another temporary directory (for files that must exist before an sshd
    /// starts, or a tree of their own), removed with the lab.
    public func makeDirectory(prefix: String) throws -> TemporaryDirectory {
        let made = try TemporaryDirectory(prefix: prefix)
        directories.append(made)
        return made
    }

    /// Starts any other program, its output in `<directory>/<log>`; it is
    /// terminated with the lab if it still runs.
    @discardableResult
    public func spawn(_ path: String, _ arguments: [String], environment: [String: String]? = nil, log: String) throws -> SpawnedProcess {
        let process = try SpawnedProcess.spawn(path, arguments, environment: environment, log: directory.appending(log))
        processes.append(process)
        return process
    }

    // MARK: - The config and the warren binary

    /// Writes warren.toml: a `state_dir` line for the lab's state directory
    /// (and `ssh_binary` when the lab has one), then `body`.
    public func writeConfig(_ body: String, mode: Int = 0o644) throws {
        try directory.write("state_dir = \"\(stateDir)\"\n" + clientLine + body, to: "warren.toml", mode: mode)
    }

    /// `ssh_binary = "..."` and a newline, or nothing; a top-level key, so it
    /// goes before every table.
    var clientLine: String { sshBinary.map { "ssh_binary = \"\($0)\"\n" } ?? "" }

    /// Config text of these tables (e.g. `SupervisorConfig.tunnel(...)`), one after another.
    public func config(_ tables: String...) -> String { tables.joined(separator: "\n") }

    /// `warren ARGS --config warren.toml`, run to completion.
    public func warren(_ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
        try await CommandRunner.warren(arguments + ["--config", configPath], environment: environment)
    }

    /// A local forward to `target` (the lab's first one when nil) on a free port.
    public func forward(to target: TCPTarget? = nil) throws -> (port: Int, spec: String) {
        let port = try FreePort.find()
        return (port, "127.0.0.1:\(port):127.0.0.1:\((target ?? self.target).port)")
    }

    /// A file warren generated for `tunnel` in the lab's state directory.
    public func tunnelFile(_ tunnel: String, _ name: String) -> String {
        "\(stateDir)/tunnels/\(tunnel)/\(name)"
    }

    // MARK: - Supervisors

    /// Starts `warren run --config CONFIG --state-dir STATE --log-level LEVEL ARGS`,
    /// its output in `<directory>/<name>.log`.
    ///
    /// - Parameters:
    ///   - config: text written to `<directory>/<name>.toml` (after the lab's
    ///     `ssh_binary` line, if any) and run; when nil, the lab's warren.toml
    ///     as it stands.
    ///   - stateDir: the lab's state directory when nil.
    ///   - environment: added to this process's environment.
    ///   - launcher: a program and its arguments that exec warren with what
    ///     follows (`prlimit --nofile=1024:20000 --`); the pid is still warren's.
    @discardableResult
    public func startSupervisor(
        config: String? = nil, arguments: [String] = [], environment: [String: String] = [:],
        name: String = "warren", stateDir: String? = nil, logLevel: String = "debug", launcher: [String] = []
    ) throws -> WarrenSupervisor {
        let configPath = try config.map { try directory.write(clientLine + $0, to: "\(name).toml") } ?? self.configPath
        let stateDir = stateDir ?? self.stateDir
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        let command = launcher + [CommandRunner.warrenBinary, "run", "--config", configPath, "--state-dir", stateDir, "--log-level", logLevel] + arguments
        let process = try SpawnedProcess.spawn(
            command[0], Array(command.dropFirst()), environment: env, log: directory.appending("\(name).log"))
        let supervisor = WarrenSupervisor(process: process, configPath: configPath, stateDir: stateDir)
        started.append((name, supervisor))
        return supervisor
    }

    /// Every supervisor the lab started, in order.
    public var supervisors: [WarrenSupervisor] { started.map(\.supervisor) }

    /// The supervisor started last.
    public var supervisor: WarrenSupervisor? { started.last?.supervisor }

    /// The supervisor started last under `name`.
    public func supervisor(named name: String) -> WarrenSupervisor? {
        started.last { $0.name == name }?.supervisor
    }

    /// Starts `warren run` with one tunnel forwarding a free local port to the
    /// target, and waits until it is up (else stops it and throws, with its log).
    public func startOneTunnel(_ name: String = "db") throws -> (warren: WarrenSupervisor, port: Int) {
        let local = try forward()
        let warren = try startSupervisor(config: SupervisorConfig.tunnel(name, sshd: sshd, local: [local.spec]))
        guard warren.waitForState(name, .up) else {
            warren.stop()
            throw FixtureError("\(name) did not come up\n--- warren log (tail)\n\(warren.logText().split(separator: "\n").suffix(40).joined(separator: "\n"))")
        }
        return (warren, local.port)
    }

    /// The lab's status.json (whoever wrote it), if there is one.
    public func statusReport() -> StatusReport? {
        FileManager.default.contents(atPath: stateDir + "/status.json").flatMap { try? JSONDecoder().decode(StatusReport.self, from: $0) }
    }

    /// Live ssh processes started with the generated files of the lab's state directory.
    public func sshProcesses() -> [pid_t] {
        ProcessTable.processes(withCmdlineContaining: stateDir + "/tunnels/").map(\.pid).filter { !ProcessTable.isZombie($0) }
    }

    /// SIGTERM to the last supervisor and its exit status; nil if it did not
    /// exit within `timeout` (it is then killed).
    public func stopSupervisor(timeout: Duration = .seconds(15)) -> Int32? {
        guard let supervisor else { return nil }
        supervisor.process.signal(SIGTERM)
        let status = supervisor.process.waitForExit(timeout: timeout)
        if status == nil { supervisor.process.terminate() }
        return status
    }

    /// SIGTERM to every supervisor still running, all at once, then waits for each.
    public func stopSupervisors() {
        for (_, supervisor) in started where supervisor.process.isAlive { supervisor.process.signal(SIGTERM) }
        for (_, supervisor) in started where supervisor.process.termination == nil { supervisor.stop() }
    }

    // MARK: - Cleanup

    /// Ends what the lab started, in reverse order of dependence (supervisors,
    /// other processes, targets, sshds), and removes its directories. Safe to
    /// call twice.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        stopSupervisors()
        for process in processes.reversed() { process.terminate() }
        for target in targets.reversed() { target.stop() }
        for sshd in sshds.reversed() { sshd.stop() }
        for made in directories.reversed() { made.remove() }
        directory.remove()
    }
}

/// Makes a lab, runs `body` with it and always stops it, whether `body`
/// returns or throws: `try await withLab(.bastion()) { lab in ... }`.
public func withLab<T>(
    _ make: @autoclosure () throws -> Lab,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (Lab) async throws -> T
) async throws -> T {
    let lab = try make()
    defer { lab.stop() }
    return try await body(lab)
}
