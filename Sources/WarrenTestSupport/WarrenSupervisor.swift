import Foundation
import WarrenCore

/// A real `warren run` process, started by `Lab.startSupervisor`, with helpers
/// to read its status.json and wait for tunnel states. Stop it with `stop()`
/// (SIGTERM, then wait); `kill()` is the sudden death some tests need.
public final class WarrenSupervisor: Sendable {
    public let process: SpawnedProcess
    public let configPath: String
    public let stateDir: String

    init(process: SpawnedProcess, configPath: String, stateDir: String) {
        self.process = process
        self.configPath = configPath
        self.stateDir = stateDir
    }

    public func status() -> StatusReport? {
        guard let data = FileManager.default.contents(atPath: "\(stateDir)/status.json") else { return nil }
        return try? JSONDecoder().decode(StatusReport.self, from: data)
    }

    /// The tunnel's status as written by *this* supervisor (an earlier one's
    /// file on the same state directory does not count).
    public func tunnel(_ name: String) -> TunnelStatus? {
        guard let report = status(), report.supervisorPid == process.pid else { return nil }
        return report.tunnels.first { $0.name == name }
    }

    /// Polls status.json until the tunnel satisfies `condition`; returns its last status.
    @discardableResult
    public func waitFor(_ name: String, timeout: Duration = .seconds(30), _ condition: (TunnelStatus) -> Bool) -> TunnelStatus? {
        var last: TunnelStatus?
        _ = waitUntil(timeout: timeout, every: .milliseconds(25)) {
            last = tunnel(name)
            return last.map(condition) ?? false
        }
        return last
    }

    /// Waits for `state` and returns whether it came.
    public func waitForState(_ name: String, _ state: TunnelState, timeout: Duration = .seconds(30)) -> Bool {
        waitFor(name, timeout: timeout) { $0.state == state }?.state == state
    }

    /// The pid of the tunnel's ssh child while one runs.
    public func sshPID(_ name: String) -> Int32? { tunnel(name)?.pid }

    /// Rewrites the config and sends SIGHUP.
    public func reload(with config: String) throws {
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        process.signal(SIGHUP)
    }

    public func logText() -> String { process.logText() }

    /// SIGTERM, then waits; SIGKILL if it does not stop in time.
    @discardableResult
    public func stop(timeout: Duration = .seconds(15)) -> SpawnedProcess.Termination {
        process.signal(SIGTERM)
        if let termination = process.waitForTermination(timeout: timeout) { return termination }
        return process.terminate()
    }

    /// SIGKILL: the supervisor dies without a chance to clean up.
    public func kill() {
        process.signal(SIGKILL)
        _ = process.waitForTermination(timeout: .seconds(5))
    }
}

/// Builds warren config text for tunnels to test sshds.
public enum SupervisorConfig {
    /// One `[tunnels.NAME]` table pointing at `sshd`, with fast timings for tests.
    public static func tunnel(
        _ name: String, sshd: SSHDServer, local: [String] = [], remote: [String] = [], dynamic: [String] = [],
        hostKey: String? = nil, extra: [String] = []
    ) -> String {
        func list(_ key: String, _ values: [String]) -> String {
            values.isEmpty ? "" : "\(key) = [\(values.map { "\"\($0)\"" }.joined(separator: ", "))]\n"
        }
        return """
            [tunnels.\(name)]
            host = "127.0.0.1"
            port = \(sshd.port)
            user = "\(sshd.user)"
            identity_file = "\(sshd.clientKeyPath)"
            host_key = "\(hostKey ?? SSHKeygen.keyWithoutComment(sshd.hostKeyLine))"
            keepalive_interval = 1
            keepalive_count = 2
            connect_timeout = 3
            backoff_min = 0.2
            backoff_max = 2
            probe_interval = 1
            \(list("local_forward", local))\(list("remote_forward", remote))\(list("dynamic_forward", dynamic))\(extra.map { $0 + "\n" }.joined())

            """
    }
}
