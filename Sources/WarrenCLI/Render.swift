import ArgumentParser
import Foundation
import WarrenCore
import WarrenRuntime

extension Warren {
    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a tunnel's generated ssh_config and known_hosts, and print them.",
            discussion: """
                The files go to <state_dir>/tunnels/TUNNEL/ (directory 0700, files 0600) and are \
                rewritten only when their content changes. `ssh -F <state_dir>/tunnels/TUNNEL/ssh_config \
                -N warren-TUNNEL` then opens the tunnel by hand, exactly as warren runs it. \
                A host_key pinned by fingerprint (SHA256:...) is checked against the key the \
                host offers before known_hosts is written; on a mismatch nothing is written (exit 1).
                """)

        @OptionGroup var options: GlobalOptions
        @OptionGroup(title: "Beyond one machine") var deployment: DeploymentOptions

        @Argument(help: "The tunnel's name, as in [tunnels.NAME].")
        var tunnel: String

        func run() async throws {
            let config = try deployment.apply(to: options.loadConfig(), shard: deployment.resolvedShard())
            let tunnel = try requireTunnel(self.tunnel, in: config)
            let files = try options.tunnelFiles(for: config)
            let rendered: RenderedTunnel
            do {
                rendered = try await files.write(tunnel, sshBinary: config.sshBinary)
            } catch let error as HostKeyResolutionError {
                throw CommandFailure("warren: \(tunnel.name): \(error.kind.rawValue): \(error.message)\n  fix: \(error.kind.hint(in: HintContext(tunnel: tunnel, message: error.message, defaultUser: ProcessInfo.processInfo.userName)))", exit: 1)
            } catch {
                throw CommandFailure("warren: \(error)", exit: 1)
            }
            print("# \(files.sshConfigPath(for: tunnel))")
            print(rendered.sshConfig, terminator: rendered.sshConfig.hasSuffix("\n") ? "" : "\n")
            print("# \(files.knownHostsPath(for: tunnel))")
            print(rendered.knownHosts, terminator: rendered.knownHosts.hasSuffix("\n") ? "" : "\n")
        }
    }
}
