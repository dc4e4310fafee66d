import ArgumentParser
import Foundation
import WarrenCore
import WarrenRuntime

extension Warren {
    struct Where: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show which shard(s) run each tunnel, and the address clients use.",
            discussion: """
                Computed from the config and the shard count, the same way every `warren run \
                --shard I/N` computes its own tunnels (rendezvous hashing of the tunnel name; \
                `replicas = K` puts a tunnel on its K best shards): nothing is looked up. \
                Shards are listed best first, the order a client should try them in. \
                Addresses are HOST:PORT of each local and dynamic forward, HOST as the shipped \
                Kubernetes manifests name pods (NAME-I.NAME.NAMESPACE.svc) or --host-template.
                """)

        @OptionGroup var options: GlobalOptions

        @Argument(help: "Tunnels to show (default: every tunnel).")
        var tunnels: [String] = []

        @Option(help: ArgumentHelp("How many shards there are (the StatefulSet's replicas).", valueName: "N"))
        var shards: Int

        @Option(help: "The namespace the StatefulSet runs in.")
        var namespace = "warren"

        @Option(help: "The name of the StatefulSet and of its headless Service.")
        var name = "warren"

        @Option(help: ArgumentHelp("Shard host names, {shard} standing for the index (for VMs: tunnels-{shard}.example.com). Overrides --name and --namespace.", valueName: "TEMPLATE"))
        var hostTemplate: String?

        @Flag(help: "Print the placements as JSON.")
        var json = false

        func validate() throws {
            guard (1...ShardSpec.maxCount).contains(shards) else { throw ValidationError("--shards must be 1-\(ShardSpec.maxCount)") }
            _ = try hosts()
        }

        func run() async throws {
            let config: WarrenConfig
            do {
                // Where a tunnel runs needs neither its key nor its host key.
                config = try ConfigFile.load(path: Locations.configFile(explicit: options.config), stateDirOverride: options.stateDir, requireIdentityFiles: false, requireHostKeys: false)
            } catch let error as ConfigError {
                throw CommandFailure(error.description, exit: ExitCodes.config)
            } catch {
                throw CommandFailure("warren: \(error)", exit: ExitCodes.config)
            }
            for name in tunnels { _ = try requireTunnel(name, in: config) }
            let plan: ShardPlan
            do {
                plan = try ShardPlan(config, count: shards)
            } catch {
                throw CommandFailure(error.description, exit: ExitCodes.config)
            }
            let all = Whereabouts.of(config, plan: plan, hosts: try hosts())
            let shown = tunnels.isEmpty ? all : all.filter { tunnels.contains($0.tunnel) }
            if json {
                print(JSONOutput.encode(WhereReport(shards: shards, tunnels: shown)), terminator: "")
            } else {
                print(Self.table(shown), terminator: "")
            }
            // On stderr in both forms: the addresses above are what clients use, this is who else can.
            for tunnel in config.tunnels where tunnels.isEmpty || tunnels.contains(tunnel.name) {
                for listener in tunnel.publicListeners { printError("warning: \(listener)") }
            }
        }

        private func hosts() throws -> ShardHosts {
            guard let hostTemplate else {
                for (option, value) in [("--name", name), ("--namespace", namespace)] where ValueRules.hostReason(value) != nil || value.contains(".") {
                    throw ValidationError("\(option) \"\(TerminalText.escape(value))\" is not a Kubernetes name (letters, digits, '-')")
                }
                return .kubernetes(name: name, namespace: namespace)
            }
            switch ShardHosts.parse(template: hostTemplate) {
            case .success(let hosts): return hosts
            case .failure(let error): throw ValidationError("--host-template \(error)")
            }
        }

        static func table(_ tunnels: [Whereabouts]) -> String {
            var rows = [["TUNNEL", "REPLICAS", "SHARD", "ADDRESS"]]
            for tunnel in tunnels {
                for (index, replica) in tunnel.placements.enumerated() {
                    let address = replica.addresses.isEmpty ? "\(replica.host) (no local forward)" : replica.addresses.joined(separator: ", ")
                    rows.append(index == 0 ? [tunnel.tunnel, "\(tunnel.replicas)", "\(replica.shard)", address] : ["", "", "\(replica.shard)", address])
                }
            }
            let widths = (0..<3).map { column in rows.map { $0[column].count }.max() ?? 0 }
            return rows.map { row in
                row.enumerated().map { $0.offset == 3 ? $0.element : $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                    .joined(separator: "  ")
            }.joined(separator: "\n") + "\n"
        }
    }
}

/// `warren where --json`.
struct WhereReport: Encodable {
    var shards: Int
    var tunnels: [Whereabouts]
}
