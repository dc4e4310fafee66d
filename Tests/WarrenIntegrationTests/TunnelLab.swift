import Foundation
import Testing
import WarrenCore
import WarrenRuntime
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A real sshd on loopback as the bastion, a live echo target behind it, and a
/// config with one tunnel in each condition `warren check` tells apart:
/// - `ok`: the target answers;
/// - `deg`: the bastion is fine, the target's port is closed (degraded);
/// - `refused`: nothing listens on the bastion's port (down, backoff);
/// - `denied`: a key the bastion does not know (down, failed: auth_failed).
/// Everything lives in one temporary directory; `stop()` (and deinit) stops
/// the supervisor this lab started, the target and the sshd.
final class TunnelLab {
    enum Tunnel: String, CaseIterable {
        case ok, deg, refused, denied
    }

    let dir: TemporaryDirectory
    let sshd: SSHDServer
    let target: TCPTarget
    let configPath: String
    let stateDir: String
    /// The local port of each tunnel's forward.
    let localPorts: [Tunnel: Int]
    private(set) var supervisor: SpawnedProcess?

    init(_ tunnels: [Tunnel] = Tunnel.allCases, connectTimeout: Int = 5) throws {
        dir = try TemporaryDirectory(prefix: "lab-")
        do {
            sshd = try SSHDServer.start()
            target = try TCPTarget.start()
        } catch {
            dir.remove()
            throw error
        }
        stateDir = dir.appending("state")
        let stranger = dir.appending("stranger_key")
        try SSHKeygen.generate(at: stranger, comment: "not-authorized")
        let closedTarget = try FreePort.find()
        let closedBastion = try FreePort.find()
        var ports: [Tunnel: Int] = [:]
        var text = """
            state_dir = "\(stateDir)"

            [defaults]
            user = "\(sshd.user)"
            identity_file = "\(sshd.clientKeyPath)"
            connect_timeout = \(connectTimeout)
            keepalive_interval = 2
            backoff_min = 1
            backoff_max = 2
            probe_interval = 1

            """
        for tunnel in tunnels {
            let port = try FreePort.find()
            ports[tunnel] = port
            let targetPort = tunnel == .deg ? closedTarget : target.port
            text += """

                [tunnels.\(tunnel.rawValue)]
                host = "127.0.0.1"
                port = \(tunnel == .refused ? closedBastion : sshd.port)
                host_key = "\(sshd.hostKeyLine)"
                local_forward = ["127.0.0.1:\(port):127.0.0.1:\(targetPort)"]
                \(tunnel == .denied ? "identity_file = \"\(stranger)\"" : "")

                """
        }
        localPorts = ports
        configPath = try dir.write(text, to: "warren.toml")
    }

    /// `warren ARGS --config <lab config>`, run to completion.
    func warren(_ arguments: [String]) async throws -> CommandResult {
        try await CommandRunner.warren(arguments + ["--config", configPath])
    }

    /// Starts `warren run` in the background with the lab's config.
    @discardableResult
    func startSupervisor(_ extra: [String] = [], environment: [String: String] = [:]) throws -> SpawnedProcess {
        precondition(supervisor == nil, "one supervisor per lab")
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        let process = try SpawnedProcess.spawn(
            CommandRunner.warrenBinary, ["run", "--config", configPath] + extra, environment: env, log: dir.appending("warren.log"))
        supervisor = process
        return process
    }

    /// SIGTERM to the supervisor and its exit status (nil if it did not exit in time).
    func stopSupervisor(timeout: Duration = .seconds(15)) -> Int32? {
        guard let supervisor else { return nil }
        supervisor.signal(SIGTERM)
        let status = supervisor.waitForExit(timeout: timeout)
        if status == nil { supervisor.terminate() }
        return status
    }

    /// The supervisor's status.json, if there is one.
    func statusReport() -> StatusReport? {
        FileManager.default.contents(atPath: stateDir + "/status.json").flatMap { try? StatusCoding.decode($0) }
    }

    /// Waits until status.json satisfies `condition` for every named tunnel.
    func waitForStatus(timeout: Duration = .seconds(30), _ condition: [Tunnel: (TunnelStatus) -> Bool]) -> Bool {
        waitUntil(timeout: timeout, every: .milliseconds(50)) {
            guard let report = statusReport(), report.running else { return false }
            return condition.allSatisfy { tunnel, check in
                report.tunnels.first { $0.name == tunnel.rawValue }.map(check) ?? false
            }
        }
    }

    /// The supervisor's log so far.
    func supervisorLog() -> String { supervisor?.logText() ?? "" }

    /// Live ssh processes started with this lab's generated files.
    func sshProcesses() -> [pid_t] {
        ProcessTable.processes(withCmdlineContaining: stateDir + "/tunnels/").map(\.pid).filter { !ProcessTable.isZombie($0) }
    }

    func stop() {
        if let supervisor, supervisor.termination == nil {
            supervisor.signal(SIGTERM)
            if supervisor.waitForExit(timeout: .seconds(15)) == nil { supervisor.terminate() }
        }
        target.stop()
        sshd.stop()
        dir.remove()
    }

    deinit { stop() }
}
