import ArgumentParser
import Foundation
import WarrenCore
import WarrenRuntime

extension Warren {
    struct Hostkey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hostkey",
            abstract: "Fetch the host keys of a tunnel's bastion and jump hops, and print the host_key line to pin.",
            discussion: """
                Asks each host with ssh-keyscan (the bastion, and every [[tunnels.NAME.jump]] hop), \
                prints each key's type and SHA256 fingerprint as `ssh-keygen -lf` does, whether it \
                matches what is pinned now, and the exact line to paste into the config: \
                host_key = "ssh-ed25519 AAAA..." or, by fingerprint, host_key = "SHA256:...". \
                With a fingerprint pin, warren fetches the key itself and trusts it only if its \
                fingerprint matches.

                ssh-keyscan trusts the network: before pinning, compare the fingerprint with what \
                the bastion's admin reads on the bastion (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub). \
                Works before the config is complete: host_key may still be missing. \
                Exits 0 when every host answered, 1 when one did not.

                --forget drops the keys that host_key_policy = "accept-new" learned for the \
                tunnel (after `host` changed, or the bastion was rebuilt and its admin confirmed \
                the new fingerprint), so that the next connection learns the key it is offered. \
                It connects to nothing.
                """)

        @OptionGroup var options: GlobalOptions

        @Argument(help: "The tunnel's name, as in [tunnels.NAME].")
        var tunnel: String

        @Flag(help: "Forget the host keys accept-new learned for this tunnel, instead of fetching keys.")
        var forget = false

        func run() async throws {
            let config = try options.loadConfig(requireHostKeys: false)
            let tunnel = try requireTunnel(self.tunnel, in: config)
            if forget { return try forgetLearned(tunnel, stateDir: config.stateDir) }
            let stateDir = config.stateDir
            let knownHosts = try? String(contentsOfFile: "\(Locations.tunnelDirectory(stateDir: stateDir, tunnel: tunnel.name))/known_hosts", encoding: .utf8)
            print("# Host keys of tunnel \(tunnel.name), fetched with ssh-keyscan. Before you pin one, compare its")
            print("# fingerprint with the admin's `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on that host.")
            var allAnswered = true
            for (index, (alias, _, endpoint)) in tunnel.endpointsInOrder.enumerated() {
                let isBastion = index == tunnel.jumps.count
                let role = isBastion ? "bastion" : "jump hop \(index + 1)"
                print("\n\(role) \(endpoint.host) port \(endpoint.port) (\(alias)):")
                let scan = await HostKeyScanner.scan(host: endpoint.host, port: endpoint.port, timeout: tunnel.connectTimeout, sshBinary: config.sshBinary)
                guard let preferred = HostKeyCheck.preferred(scan.keys) else {
                    allAnswered = false
                    printText("  no key: \(scan.problem ?? "no answer")\n")
                    if index > 0 {
                        print("  (it is behind the jump hop(s) and may not be reachable from here directly: pin it by the")
                        print("  fingerprint its admin reads out, host_key = \"SHA256:...\", and check with `warren doctor \(tunnel.name)`)")
                    }
                    continue
                }
                for key in scan.keys { print("  \(HostKeyCheck.describe(key))") }
                let learned = HostKeyCheck.parseKeyLines(knownHosts ?? "", host: alias)
                print("  now: \(status(endpoint, learned: learned, offered: scan.keys))")
                let section = isBastion ? "[tunnels.\(tunnel.name)]" : "the \(ordinal(index + 1)) [[tunnels.\(tunnel.name).jump]] (host = \"\(endpoint.host)\")"
                print("  paste into \(section), the key:")
                print("    host_key = \"\(preferred)\"")
                print("  or its fingerprint (warren then fetches the key and checks it):")
                print("    host_key = \"\(preferred.fingerprint ?? "?")\"")
            }
            if !allAnswered { throw ExitCode(1) }
        }

        private func status(_ endpoint: SSHEndpoint, learned: [HostKey], offered: [HostKey]) -> String {
            switch HostKeyCheck.verdict(for: endpoint, learned: learned, offered: offered) {
            case .matches(let key): return "the pinned key matches (\(HostKeyCheck.describe(key)))"
            case .firstUse: return "host_key_policy = \"accept-new\": nothing learned yet; the first connection pins the key it is offered"
            case .notChecked: return "host_key_policy = \"insecure-no-check\": host keys are not checked"
            case .mismatch(let pinned, _) where pinned.isEmpty: return "nothing pinned yet"
            case .mismatch(let pinned, _): return "DIFFERENT from the pinned \(pinned.joined(separator: ", ")): ssh refuses this host until the pin is updated"
            }
        }

        /// Removes the learned keys of the tunnel's accept-new endpoints from its known_hosts.
        private func forgetLearned(_ tunnel: TunnelConfig, stateDir: String) throws {
            let learning = Set(tunnel.endpointsInOrder.filter { $0.endpoint.hostKeyPolicy == .acceptNew }.map(\.alias))
            guard !learning.isEmpty else {
                throw CommandFailure("warren: tunnel \(tunnel.name) pins its host keys (host_key): there is nothing learned to forget; update host_key instead (`warren hostkey \(tunnel.name)`)", exit: 1)
            }
            let path = "\(Locations.tunnelDirectory(stateDir: stateDir, tunnel: tunnel.name))/known_hosts"
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            let (kept, removed) = HostKeyCheck.forgetting(aliases: learning, in: text)
            guard removed > 0 else {
                print("tunnel \(tunnel.name): no learned host key in \(path); the next connection learns one")
                return
            }
            do {
                try AtomicFile.write(kept, to: path)
            } catch {
                throw CommandFailure("warren: cannot rewrite \(path): \(error); run this as the user that runs warren", exit: 1)
            }
            print("tunnel \(tunnel.name): forgot \(removed) learned host key\(removed == 1 ? "" : "s") in \(path); the next connection learns the key it is offered (a running `warren run` does so at its next retry)")
        }

        private func ordinal(_ n: Int) -> String {
            switch n {
            case 1: return "first"
            case 2: return "second"
            case 3: return "third"
            default: return "\(n)th"
            }
        }
    }
}
