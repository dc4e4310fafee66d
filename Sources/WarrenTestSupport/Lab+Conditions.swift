import Foundation
import WarrenCore

/// The lab as every condition `warren check` tells apart: its sshd as the
/// bastion, its echo target behind it, and a config with one tunnel each:
/// - `ok`: the target answers;
/// - `deg`: the bastion is fine, the target's port is closed (degraded);
/// - `refused`: nothing listens on the bastion's port (down, backoff);
/// - `denied`: a key the bastion does not know (down, failed: auth_failed).
extension Lab {
    public enum Condition: String, CaseIterable, Sendable {
        case ok, deg, refused, denied
    }

    /// A lab whose warren.toml (with `state_dir`) has one tunnel, named after
    /// it, for each of `tunnels`, with fast timings.
    public static func conditions(_ tunnels: [Condition] = Condition.allCases, connectTimeout: Int = 5) throws -> Lab {
        let lab = try Lab()
        do {
            let stranger = lab.directory.appending("stranger_key")
            try SSHKeygen.generate(at: stranger, comment: "not-authorized")
            let closedTarget = try FreePort.find()
            let closedBastion = try FreePort.find()
            var text = """

                [defaults]
                user = "\(lab.sshd.user)"
                identity_file = "\(lab.sshd.clientKeyPath)"
                connect_timeout = \(connectTimeout)
                keepalive_interval = 2
                backoff_min = 1
                backoff_max = 2
                probe_interval = 1

                """
            for tunnel in tunnels {
                let port = try FreePort.find()
                lab.localPorts[tunnel.rawValue] = port
                text += """

                    [tunnels.\(tunnel.rawValue)]
                    host = "127.0.0.1"
                    port = \(tunnel == .refused ? closedBastion : lab.sshd.port)
                    host_key = "\(lab.sshd.hostKeyLine)"
                    local_forward = ["127.0.0.1:\(port):127.0.0.1:\(tunnel == .deg ? closedTarget : lab.target.port)"]
                    \(tunnel == .denied ? "identity_file = \"\(stranger)\"" : "")

                    """
            }
            try lab.writeConfig(text, mode: 0o600)
            return lab
        } catch {
            lab.stop()
            throw error
        }
    }

    /// The local port of the tunnel for `condition`.
    public func localPort(_ condition: Condition) -> Int {
        guard let port = localPorts[condition.rawValue] else { preconditionFailure("no tunnel \(condition) in this lab") }
        return port
    }

    /// Waits until the lab's status.json, written by a running supervisor,
    /// satisfies `condition` for every named tunnel.
    public func waitForStatus(timeout: Duration = .seconds(30), _ condition: [Condition: (TunnelStatus) -> Bool]) -> Bool {
        waitUntil(timeout: timeout, every: .milliseconds(50)) {
            guard let report = statusReport(), report.running else { return false }
            return condition.allSatisfy { tunnel, check in
                report.tunnels.first { $0.name == tunnel.rawValue }.map(check) ?? false
            }
        }
    }

    /// The last supervisor's log so far.
    public func supervisorLog() -> String { supervisor?.logText() ?? "" }
}
