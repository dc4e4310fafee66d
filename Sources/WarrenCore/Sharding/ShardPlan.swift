/// Where every tunnel of a config runs when it is split over `count` shards.
/// Pure: computed from the tunnel names and `replicas`, never looked up.
public struct ShardPlan: Sendable, Equatable {
    /// One tunnel's placement.
    public struct Placement: Sendable, Equatable {
        public var tunnel: String
        /// The shards that run it, best (highest weight) first.
        public var shards: [Int]
    }

    public var count: Int
    /// Every tunnel of the config, in the config's order (by name).
    public var placements: [Placement]

    /// Places every tunnel. A tunnel whose `replicas` exceeds `count` is a config
    /// error naming the key that set it: it could never run on that many shards.
    public init(_ config: WarrenConfig, count: Int) throws(ConfigError) {
        var issues: [ConfigIssue] = []
        for tunnel in config.tunnels where tunnel.replicas > count {
            issues.append(ConfigIssue(
                path: tunnel.replicasKeyPath ?? "tunnels.\(tunnel.name).replicas",
                message: "\(tunnel.name) wants \(tunnel.replicas) replicas but there \(count == 1 ? "is 1 shard" : "are \(count) shards"); lower replicas to at most \(count), or run more shards"))
        }
        guard issues.isEmpty else { throw ConfigError(file: config.file, issues: issues) }
        let rendezvous = Rendezvous(count: count)
        self.count = count
        self.placements = config.tunnels.map {
            Placement(tunnel: $0.name, shards: rendezvous.shards(for: $0.name, replicas: $0.replicas))
        }
    }

    /// The shards that run `tunnel`, best first; empty for a name not in the config.
    public func shards(of tunnel: String) -> [Int] {
        placements.first { $0.tunnel == tunnel }?.shards ?? []
    }

    /// The tunnels that shard `index` runs.
    public func tunnels(on index: Int) -> [String] {
        placements.filter { $0.shards.contains(index) }.map(\.tunnel)
    }
}

extension WarrenConfig {
    /// The config as one deployed replica runs it: forwards moved to `bind`
    /// (`--forward-bind`), and every tunnel's `replicas` checked against the
    /// shard count (`--shard I/N`). Which tunnels the shard runs is
    /// `ShardSpec.runs(_:)`; the others stay in the config, to be reported as
    /// another shard's.
    public func deployed(shard: ShardSpec?, bind: ForwardBind?) throws(ConfigError) -> WarrenConfig {
        let config = try bind.map { b throws(ConfigError) in try bindingForwards(to: b) } ?? self
        if let shard { _ = try ShardPlan(config, count: shard.count) }
        return config
    }
}

extension TunnelConfig {
    /// The tunnel as its ssh sees it, without where it runs (`replicas`): a
    /// reload that changes only `replicas` must not restart a tunnel that
    /// keeps running here, and configs are compared this way to decide.
    public var unplaced: TunnelConfig {
        var tunnel = self
        tunnel.replicas = 1
        tunnel.replicasKeyPath = nil
        return tunnel
    }
}

extension TunnelStatus {
    /// The status of a tunnel the supervisor does not run, as `shard` sees it:
    /// another shard's (`other_shard`, with the shards that run it) when the
    /// rendezvous places it elsewhere, else unchanged (`stopped`: disabled or
    /// not named on the command line).
    public func placed(_ tunnel: TunnelConfig, on shard: ShardSpec?) -> TunnelStatus {
        guard let shard else { return self }
        var status = self
        status.shards = Rendezvous(count: shard.count).shards(for: tunnel.name, replicas: tunnel.replicas)
        if tunnel.enabled && !shard.runs(tunnel) { status.state = .otherShard }
        return status
    }
}
