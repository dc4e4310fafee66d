import ArgumentParser
import Foundation
import WarrenCore
import WarrenRuntime

extension Warren {
    struct BastionConfigCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bastion-config",
            abstract: "Print what the admins of a tunnel's bastion and jump hops paste: authorized_keys lines and sshd_config Match blocks.",
            discussion: """
                For each host ssh dials (every jump hop, then the bastion): the authorized_keys \
                line for the tunnel's key (a hop's line only lets it open the next host's SSH \
                port), and a `Match User` block for sshd_config that allows forwarding only in \
                the direction the tunnel needs (PermitOpen/PermitListen), no TTY, X11, agent or \
                tun forwarding, any session forced to /bin/false, and server-side keepalives. \
                `sshd -t` accepts it. Then MaxStartups advice, and the source address this \
                machine uses toward the first host, for its allowlist (a NAT may change it). \
                Connects to nothing.
                """)

        @OptionGroup var options: GlobalOptions

        @Argument(help: "The tunnel's name, as in [tunnels.NAME].")
        var tunnel: String

        func run() async throws {
            let config = try options.loadConfig(requireHostKeys: false)
            let tunnel = try requireTunnel(self.tunnel, in: config)
            let renderer = try authorizedKeyRenderer(options, config: config)
            let policies = BastionConfig.policies(tunnel)
            var hosts: [BastionConfig.Host] = []
            for (index, (_, _, endpoint)) in tunnel.endpointsInOrder.enumerated() {
                let isBastion = index == tunnel.jumps.count
                let line = await line(for: endpoint, policy: policies[index], renderer: renderer, sshBinary: config.sshBinary)
                hosts.append(BastionConfig.Host(
                    role: isBastion ? "bastion" : "jump hop \(index + 1)", endpoint: endpoint,
                    user: endpoint.user ?? ProcessInfo.processInfo.userName, policy: policies[index], line: line,
                    match: BastionConfig.matchLines(policies[index], tunnel: tunnel, isBastion: isBastion)))
            }
            let first = tunnel.endpointsInOrder[0].endpoint
            let sharing = config.tunnels.filter { $0.endpointsInOrder[0].endpoint.host == first.host && $0.endpointsInOrder[0].endpoint.port == first.port }.count
            let source = SourceAddress.toward(host: first.host, port: first.port).mapError { BastionConfig.LineUnavailable($0.reason) }
            print(BastionConfig.render(tunnel: tunnel, hosts: hosts, tunnelsSharingFirstHost: sharing, source: source), terminator: "")
        }

        private func line(for endpoint: SSHEndpoint, policy: AuthorizedKeyPolicy, renderer: AuthorizedKeyRenderer, sshBinary: String?) async -> Result<String, BastionConfig.LineUnavailable> {
            guard !endpoint.identityFile.isEmpty else {
                let how = endpoint.login.identityAgent != nil ? "the tunnel logs in with an agent's key: put these options before the line `ssh-add -L` prints" : "the tunnel logs in with a password"
                return .failure(BastionConfig.LineUnavailable(how))
            }
            do {
                return .success(renderer.line(policy, key: try await PublicKeyFile.read(endpoint.identityFile, sshBinary: sshBinary)))
            } catch {
                return .failure(BastionConfig.LineUnavailable("\(error)"))
            }
        }
    }
}
