import Foundation
import WarrenCore

/// Writes a tunnel's generated files into `<state_dir>/tunnels/<name>/`.
public struct TunnelFiles: Sendable {
    public let renderer: TunnelRenderer
    public let stateDir: String
    public let configFile: String

    public init(templatesDirectory: String, stateDir: String, configFile: String) throws {
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
    }

    public func directory(for tunnel: TunnelConfig) -> String {
        Locations.tunnelDirectory(stateDir: stateDir, tunnel: tunnel.name)
    }

    public func sshConfigPath(for tunnel: TunnelConfig) -> String { "\(directory(for: tunnel))/ssh_config" }
    public func knownHostsPath(for tunnel: TunnelConfig) -> String { "\(directory(for: tunnel))/known_hosts" }
    /// The askpass helper (written only for tunnels that need one).
    public func askpassPath(for tunnel: TunnelConfig) -> String { "\(directory(for: tunnel))/askpass" }

    /// Renders without writing.
    public func render(_ tunnel: TunnelConfig) -> RenderedTunnel {
        let existing = try? String(contentsOfFile: knownHostsPath(for: tunnel), encoding: .utf8)
        return renderer.render(tunnel, configFile: configFile, directory: directory(for: tunnel), existingKnownHosts: existing)
    }

    /// Renders and writes both files (0600 in a 0700 directory), each only when
    /// its content changed. Returns what was rendered.
    ///
    /// Fingerprint pins (`host_key = "SHA256:..."`) are resolved first (see
    /// `HostKeyResolver`): a host that offers no key with the pinned fingerprint
    /// throws `HostKeyResolutionError` and nothing is written.
    @discardableResult
    public func write(_ tunnel: TunnelConfig, sshBinary: String? = nil) async throws -> RenderedTunnel {
        let existing = try? String(contentsOfFile: knownHostsPath(for: tunnel), encoding: .utf8)
        let tunnel = try await HostKeyResolver.resolve(tunnel, knownHosts: existing, sshBinary: sshBinary)
        let rendered = render(tunnel)
        try AtomicFile.makeDirectory(stateDir, mode: 0o700)
        try AtomicFile.makeDirectory("\(stateDir)/tunnels", mode: 0o700)
        try AtomicFile.makeDirectory(directory(for: tunnel), mode: 0o700)
        try AtomicFile.write(rendered.knownHosts, to: knownHostsPath(for: tunnel))
        try AtomicFile.write(rendered.sshConfig, to: sshConfigPath(for: tunnel))
        if let askpass = rendered.askpass {
            try AtomicFile.write(askpass, to: askpassPath(for: tunnel), mode: 0o700)
        } else {
            unlink(askpassPath(for: tunnel))
        }
        return rendered
    }
}
