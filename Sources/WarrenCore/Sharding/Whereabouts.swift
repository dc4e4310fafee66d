/// The host names shards answer on, for `warren where`.
public struct ShardHosts: Sendable, Hashable {
    /// A host name with `{shard}` where the shard's index goes.
    public var template: String

    /// The shipped manifests: the StatefulSet and its headless Service are both
    /// `name`, so pod I answers on `NAME-I.NAME.NAMESPACE.svc`.
    public static func kubernetes(name: String, namespace: String) -> ShardHosts {
        ShardHosts(template: "\(name)-{shard}.\(name).\(namespace).svc")
    }

    /// A template of the user's (VMs: `tunnels-{shard}.example.com`); it must
    /// contain `{shard}` and otherwise be a host name.
    public static func parse(template: String) -> Result<ShardHosts, ShardError> {
        guard template.contains("{shard}") else {
            return .failure(ShardError("\"\(TerminalText.escape(template))\" has no {shard}, so every shard would get the same host; e.g. tunnels-{shard}.example.com"))
        }
        if let reason = ValueRules.hostReason(template.replacingOccurrences(of: "{shard}", with: "0")) {
            return .failure(ShardError("\"\(TerminalText.escape(template))\" is not a host name with {shard} in it: \(reason)"))
        }
        return .success(ShardHosts(template: template))
    }

    public func host(_ shard: Int) -> String {
        template.replacingOccurrences(of: "{shard}", with: String(shard))
    }
}

/// Where one tunnel runs and how clients reach it: `warren where`'s answer.
/// The JSON field names are public interface.
public struct Whereabouts: Sendable, Equatable, Codable {
    /// One shard that runs the tunnel.
    public struct Replica: Sendable, Equatable, Codable {
        public var shard: Int
        public var host: String
        /// `HOST:PORT` for each local and dynamic TCP forward, in config order.
        public var addresses: [String]

        public init(shard: Int, host: String, addresses: [String]) {
            self.shard = shard
            self.host = host
            self.addresses = addresses
        }
    }

    public var tunnel: String
    public var replicas: Int
    /// Best first: the order a client should try them in.
    public var placements: [Replica]

    public init(tunnel: String, replicas: Int, placements: [Replica]) {
        self.tunnel = tunnel
        self.replicas = replicas
        self.placements = placements
    }

    /// Computed from the plan and the config, never looked up.
    public static func of(_ config: WarrenConfig, plan: ShardPlan, hosts: ShardHosts) -> [Whereabouts] {
        config.tunnels.map { tunnel in
            let ports = (tunnel.localForwards + tunnel.dynamicForwards).compactMap(\.listen.port)
            let placements = plan.shards(of: tunnel.name).map { shard in
                Replica(shard: shard, host: hosts.host(shard), addresses: ports.map { "\(hosts.host(shard)):\($0)" })
            }
            return Whereabouts(tunnel: tunnel.name, replicas: tunnel.replicas, placements: placements)
        }
    }
}
