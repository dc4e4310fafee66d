import Foundation
import WarrenCore
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A scratch directory holding a warren.toml and its state directory, and the
/// real `warren` binary run against them.
struct Workspace {
    let dir: TemporaryDirectory
    var configPath: String { dir.appending("warren.toml") }
    var stateDir: String { dir.appending("state") }

    init(prefix: String = "ws-") throws {
        dir = try TemporaryDirectory(prefix: prefix)
    }

    func remove() { dir.remove() }

    /// Writes warren.toml: `state_dir` first, then `body`.
    func writeConfig(_ body: String) throws {
        try dir.write("state_dir = \"\(stateDir)\"\n" + body, to: "warren.toml", mode: 0o644)
    }

    /// `warren ARGS --config warren.toml`.
    func warren(_ arguments: [String]) async throws -> CommandResult {
        try await CommandRunner.warren(arguments + ["--config", configPath])
    }

    /// `warren doctor TUNNEL --json`, decoded.
    func doctor(_ tunnel: String) async throws -> (result: CommandResult, report: DoctorReport) {
        let result = try await warren(["doctor", tunnel, "--json"])
        let report = try JSONDecoder().decode(DoctorReport.self, from: Data(result.stdout.utf8))
        return (result, report)
    }

    /// A copy of `key` (and its .pub) in the workspace, 0600.
    func copyKey(_ key: String, as name: String = "id_ed25519") throws -> String {
        let path = dir.appending(name)
        try FileManager.default.copyItem(atPath: key, toPath: path)
        try? FileManager.default.copyItem(atPath: key + ".pub", toPath: path + ".pub")
        chmod(path, 0o600)
        return path
    }

    func tunnelFile(_ tunnel: String, _ name: String) -> String {
        "\(stateDir)/tunnels/\(tunnel)/\(name)"
    }

    /// The mode bits of `path`, or nil.
    static func mode(_ path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int(info.st_mode & 0o7777)
    }
}

/// A bastion for tests: a real sshd with a target behind it, and a workspace
/// whose tunnel `db` forwards a free local port to the target through it.
struct Bastion {
    let sshd: SSHDServer
    let target: TCPTarget
    let workspace: Workspace
    let localPort: Int
    let key: String

    /// - Parameter extra: more lines for `[tunnels.db]` (e.g. a host_key).
    static func start(_ options: SSHDServer.Options = .init(), hostKey: String? = nil, extra: String = "", identity: Bool = true) throws -> Bastion {
        let sshd = try SSHDServer.start(options)
        do {
            let target = try TCPTarget.start()
            let workspace = try Workspace()
            let key = try workspace.copyKey(sshd.clientKeyPath)
            let localPort = try FreePort.find()
            try workspace.writeConfig("""
                [tunnels.db]
                host = "127.0.0.1"
                port = \(sshd.port)
                user = "\(sshd.user)"
                \(identity ? "identity_file = \"\(key)\"" : "")
                host_key = "\(hostKey ?? sshd.hostKeyLine)"
                connect_timeout = 3
                local_forward = "127.0.0.1:\(localPort):127.0.0.1:\(target.port)"
                \(extra)
                """)
            return Bastion(sshd: sshd, target: target, workspace: workspace, localPort: localPort, key: key)
        } catch {
            sshd.stop()
            throw error
        }
    }

    func stop() {
        target.stop()
        sshd.stop()
        workspace.remove()
    }
}

/// Runs `body` with a started bastion and always stops it.
func withBastion<T>(
    _ options: SSHDServer.Options = .init(), hostKey: String? = nil, extra: String = "", identity: Bool = true,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (Bastion) async throws -> T
) async throws -> T {
    let bastion = try Bastion.start(options, hostKey: hostKey, extra: extra, identity: identity)
    defer { bastion.stop() }
    return try await body(bastion)
}

extension DoctorReport {
    /// The step with this number.
    func step(_ number: Int) -> Step? { steps.first { $0.number == number } }
    /// Numbers of the failed steps.
    var failedNumbers: [Int] { failedSteps.map(\.number) }
}
