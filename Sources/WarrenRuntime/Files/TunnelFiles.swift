import Foundation
import WarrenCore

/// Writes a tunnel's generated files into `<state_dir>/tunnels/<name>/`.
public struct TunnelFiles: Sendable {
    public let renderer: TunnelRenderer
    public let stateDir: String
    public let configFile: String
    /// The ssh that jump hops run (the generated ProxyCommand names it).
    public let sshProgram: String

    public init(templatesDirectory: String, stateDir: String, configFile: String, sshBinary: String? = nil) throws {
        func read(_ name: String) throws -> String {
            let path = "\(templatesDirectory)/\(name)"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw LocationError(message: "cannot read template \(path)")
            }
            return text
        }
        self.renderer = try TunnelRenderer(
            sshConfigTemplate: read(TunnelRenderer.sshConfigTemplate),
            knownHostsTemplate: read(TunnelRenderer.knownHostsTemplate))
        self.stateDir = stateDir
        self.configFile = configFile
        self.sshProgram = LaunchTools.find(sshBinary: sshBinary).ssh
    }

    /// The running warren binary (/proc/self/exe), which the askpass helper runs.
    static let warrenProgram: String = {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }()

    public func directory(for tunnel: TunnelConfig) -> String {
        Locations.tunnelDirectory(stateDir: stateDir, tunnel: tunnel.name)
    }

    public func sshConfigPath(for tunnel: TunnelConfig) -> String { "\(directory(for: tunnel))/ssh_config" }
    public func knownHostsPath(for tunnel: TunnelConfig) -> String { "\(directory(for: tunnel))/known_hosts" }
    /// The askpass helper (written only for tunnels that need one).
    public func askpassPath(for tunnel: TunnelConfig) -> String { "\(directory(for: tunnel))/askpass" }

    /// The known_hosts warren wrote before (its accept-new pins), read without
    /// following a link: nil when absent or not a plain file of ours.
    func existingKnownHosts(for tunnel: TunnelConfig) -> String? {
        guard let state = try? SafeDirectory.open(AtomicFile.absolute(stateDir), create: false),
            let bytes = try? state.subdirectory("tunnels", create: false).subdirectory(tunnel.name, create: false).read("known_hosts")
        else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Renders without writing.
    public func render(_ tunnel: TunnelConfig, control: ControlRole = .none) -> RenderedTunnel {
        render(tunnel, existingKnownHosts: existingKnownHosts(for: tunnel), control: control)
    }

    private func render(_ tunnel: TunnelConfig, existingKnownHosts existing: String?, control: ControlRole) -> RenderedTunnel {
        renderer.render(
            tunnel, configFile: configFile, directory: directory(for: tunnel), existingKnownHosts: existing,
            sshProgram: sshProgram, control: control, warrenProgram: Self.warrenProgram)
    }

    /// The control socket of a shared connection's master, in its directory.
    public func controlPath(for share: ConnectionShare) -> String { "\(directory(for: share.master))/control" }

    /// Renders and writes both files (0600 in a 0700 directory), each only when
    /// its content changed. Returns what was rendered.
    ///
    /// Fingerprint pins (`host_key = "SHA256:..."`) are resolved first (see
    /// `HostKeyResolver`): a host that offers no key with the pinned fingerprint
    /// throws `HostKeyResolutionError` and nothing is written.
    @discardableResult
    public func write(_ tunnel: TunnelConfig, sshBinary: String? = nil, control: ControlRole = .none) async throws -> RenderedTunnel {
        let existing = existingKnownHosts(for: tunnel)
        let tunnel = try await HostKeyResolver.resolve(tunnel, knownHosts: existing, sshBinary: sshBinary)
        // The known_hosts read above, not read again: this runs before every ssh.
        let rendered = render(tunnel, existingKnownHosts: existing, control: control)
        // Below the state directory nothing is followed: each level is opened
        // relative to the one above with O_NOFOLLOW (see SafeDirectory).
        let directory = try SafeDirectory.open(AtomicFile.absolute(stateDir)).subdirectory("tunnels").subdirectory(tunnel.name)
        // Atomic, not fsynced: they are rendered from the config again before
        // every ssh (and rewritten when they differ, a file a power cut left
        // empty included), so durability buys nothing; a thousand tunnels
        // starting paid two thousand fsyncs in a row for it (seconds).
        try AtomicFile.write(rendered.knownHosts, named: "known_hosts", in: directory, durable: false)
        try AtomicFile.write(rendered.sshConfig, named: "ssh_config", in: directory, durable: false)
        if let askpass = rendered.askpass {
            try AtomicFile.write(askpass, named: "askpass", in: directory, mode: 0o700, durable: false)
        } else {
            directory.remove("askpass")
        }
        return rendered
    }
}
