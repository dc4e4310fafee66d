import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// The repository's own templates, as shipped.
func shippedRenderer() throws -> TunnelRenderer {
    let templates = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Templates")
    return try TunnelRenderer(
        sshConfigTemplate: String(contentsOf: templates.appendingPathComponent(TunnelRenderer.sshConfigTemplate), encoding: .utf8),
        knownHostsTemplate: String(contentsOf: templates.appendingPathComponent(TunnelRenderer.knownHostsTemplate), encoding: .utf8))
}

@Suite struct TunnelRendererTests {
    static let config = try! makeLoader().load(text: substitute(ConfigCases.valid), file: "/etc/warren/warren.toml")

    /// Golden files: set WARREN_UPDATE_GOLDEN=1 to rewrite them after a deliberate template change.
    @Test(arguments: config.tunnels.map(\.name))
    func matchesGoldenFiles(_ name: String) throws {
        let tunnel = try #require(Self.config.tunnel(named: name))
        let rendered = try shippedRenderer().render(tunnel, configFile: Self.config.file, directory: "/state/tunnels/\(name)")
        for (suffix, text) in [("ssh_config", rendered.sshConfig), ("known_hosts", rendered.knownHosts)] {
            let fixture = "golden/\(name).\(suffix)"
            if ProcessInfo.processInfo.environment["WARREN_UPDATE_GOLDEN"] == "1" {
                let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(fixture)")
                try text.write(to: source, atomically: true, encoding: .utf8)
                continue
            }
            let url = try #require(Bundle.module.url(forResource: "Fixtures/\(fixture)", withExtension: nil), "missing \(fixture)")
            let expected = try String(contentsOf: url, encoding: .utf8)
            #expect(text == expected, "\(fixture) differs; if the change is deliberate, rerun with WARREN_UPDATE_GOLDEN=1")
        }
    }

    @Test func everyHostBlockHasTheSafetySettings() throws {
        for tunnel in Self.config.tunnels {
            let text = try shippedRenderer().render(tunnel, configFile: "f", directory: "/d").sshConfig
            let blocks = text.components(separatedBy: "\nHost ").dropFirst()
            #expect(blocks.count == tunnel.jumps.count + 1)
            for block in blocks {
                for line in [
                    "IdentitiesOnly yes", "BatchMode yes", "GlobalKnownHostsFile /dev/null",
                    "ExitOnForwardFailure yes", "UserKnownHostsFile /d/known_hosts",
                    "ServerAliveInterval 5", "ServerAliveCountMax 2", "ConnectTimeout 4",
                ] {
                    #expect(block.contains("\n  \(line)\n"), "\(tunnel.name): missing \(line)")
                }
            }
        }
    }

    @Test func acceptNewKeepsTheLearnedPinAndDropsStrangers() throws {
        let socks = try #require(Self.config.tunnel(named: "socks"))
        let learned = "warren-socks ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILearnedKeyLearnedKeyLearnedKeyLearnedK\nevil.example ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ\n"
        let rendered = try shippedRenderer().render(socks, configFile: "f", directory: "/d", existingKnownHosts: learned)
        #expect(rendered.knownHosts.contains("warren-socks ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILearnedKey"))
        #expect(!rendered.knownHosts.contains("evil.example"))
        #expect(rendered.sshConfig.contains("StrictHostKeyChecking accept-new"))
    }

    @Test func pinnedTunnelIgnoresKeysLearnedEarlier() throws {
        let local = try #require(Self.config.tunnel(named: "local"))
        let rendered = try shippedRenderer().render(local, configFile: "f", directory: "/d", existingKnownHosts: "warren-local ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ\n")
        #expect(!rendered.knownHosts.contains("ssh-rsa"))
        #expect(rendered.knownHosts.contains("warren-local \(ConfigCases.hostKey)"))
    }
}
