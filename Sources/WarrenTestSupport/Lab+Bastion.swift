import Foundation
import WarrenCore
#if canImport(Glibc)
import Glibc
#endif

/// The lab as one bastion: tunnel `db` forwards a free local port through
/// the lab's sshd to its target, with a copy of the client key in the lab.
extension Lab {
    /// The name of the key copy `bastion(...)` writes into the lab.
    public static let bastionKeyName = "id_ed25519"

    /// A lab with an sshd, a target, `<directory>/id_ed25519` (a copy of the
    /// sshd's client key) and a warren.toml whose tunnel `db` forwards
    /// `localPort` to the target through the sshd.
    ///
    /// - Parameters:
    ///   - hostKey: the pinned host key; the sshd's own when nil.
    ///   - extra: more lines for `[tunnels.db]`.
    ///   - identity: whether `db` names the key copy as its identity_file.
    ///   - sshBinary: the client warren runs (`Lab.sshBinary`).
    public static func bastion(
        _ options: SSHDServer.Options = SSHDServer.Options(), hostKey: String? = nil, extra: String = "", identity: Bool = true,
        sshBinary: String? = nil
    ) throws -> Lab {
        let lab = try Lab(prefix: "ws-", sshd: options, sshBinary: sshBinary)
        do {
            let key = try lab.copyKey(lab.sshd.clientKeyPath, as: bastionKeyName)
            let localPort = try FreePort.find()
            lab.localPorts["db"] = localPort
            try lab.writeConfig("""
                [tunnels.db]
                host = "127.0.0.1"
                port = \(lab.sshd.port)
                user = "\(lab.sshd.user)"
                \(identity ? "identity_file = \"\(key)\"" : "")
                host_key = "\(hostKey ?? lab.sshd.hostKeyLine)"
                connect_timeout = 3
                local_forward = "127.0.0.1:\(localPort):127.0.0.1:\(lab.target.port)"
                \(extra)
                """)
            return lab
        } catch {
            lab.stop()
            throw error
        }
    }

    /// The key copy `bastion(...)` wrote.
    public var key: String { directory.appending(Self.bastionKeyName) }

    /// Tunnel `db`'s local port, as `bastion(...)` wrote it.
    public var localPort: Int {
        guard let port = localPorts["db"] else { preconditionFailure("no tunnel db in this lab") }
        return port
    }

    /// A copy of `key` (and its .pub) in the lab, 0600.
    public func copyKey(_ key: String, as name: String = "id_ed25519") throws -> String {
        let path = directory.appending(name)
        try FileManager.default.copyItem(atPath: key, toPath: path)
        try? FileManager.default.copyItem(atPath: key + ".pub", toPath: path + ".pub")
        chmod(path, 0o600)
        return path
    }

    /// `warren doctor TUNNEL --json ARGS`, decoded.
    public func doctor(_ tunnel: String, _ arguments: [String] = [], environment: [String: String] = [:]) async throws -> (result: CommandResult, report: DoctorReport) {
        let result = try await warren(["doctor", tunnel, "--json"] + arguments, environment: environment)
        do {
            return (result, try JSONDecoder().decode(DoctorReport.self, from: Data(result.stdout.utf8)))
        } catch {
            throw FixtureError("warren doctor \(tunnel) --json did not print a report: \(error)\n\(result)")
        }
    }

    /// The mode bits of `path`, or nil.
    public static func mode(_ path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int(info.st_mode & 0o7777)
    }
}

extension DoctorReport {
    /// The step with this number.
    public func step(_ number: Int) -> Step? { steps.first { $0.number == number } }
    /// Numbers of the failed steps.
    public var failedNumbers: [Int] { failedSteps.map(\.number) }
}
