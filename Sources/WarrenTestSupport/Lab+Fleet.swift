import Foundation
import WarrenCore

/// The lab as a fleet of pods: several `warren run --shard I/N` on one
/// machine, one sshd as every tunnel's bastion, one echo target behind it,
/// the same config for every shard, each shard with a state directory of its
/// own and its forwards on its own loopback address (`--forward-bind
/// 127.0.0.(2+I)`), so that replicas of one tunnel on two shards do not collide.
extension Lab {
    /// A lab whose warren.toml (without `state_dir`: each shard has its own)
    /// has `replicas` and one local forward to the target per tunnel.
    public static func fleet(tunnels: [String], replicas: Int) throws -> Lab {
        let lab = try Lab(prefix: "wshard-")
        do {
            var text = "[defaults]\nreplicas = \(replicas)\n\n"
            for name in tunnels {
                let local = try lab.forward()
                lab.localPorts[name] = local.port
                text += SupervisorConfig.tunnel(name, sshd: lab.sshd, local: [local.spec])
            }
            try lab.directory.write(text, to: "warren.toml")
            return lab
        } catch {
            lab.stop()
            throw error
        }
    }

    /// Shard `index`'s forward address.
    public static func shardAddress(_ index: Int) -> String { "127.0.0.\(2 + index)" }

    /// Starts shard `index` of `count` on the lab's config, in a state directory of its own.
    @discardableResult
    public func startShard(_ index: Int, of count: Int) throws -> WarrenSupervisor {
        try startSupervisor(
            arguments: ["--shard", "\(index)/\(count)", "--forward-bind", Self.shardAddress(index)],
            name: "shard-\(index)of\(count)", stateDir: directory.appending("shard-\(index)of\(count)"), logLevel: "info")
    }

    /// The supervisor started last as shard `index` (of any count).
    public func shard(_ index: Int) -> WarrenSupervisor? { shards[index] }

    /// Shards started so far, index -> the last supervisor started for it
    /// (`startShard` names them `shard-IofN`).
    private var shards: [Int: WarrenSupervisor] {
        var out: [Int: WarrenSupervisor] = [:]
        for (name, supervisor) in started where name.hasPrefix("shard-") {
            if let index = name.dropFirst("shard-".count).split(separator: "o").first.flatMap({ Int($0) }) { out[index] = supervisor }
        }
        return out
    }

    /// `warren where --shards N --json` on the lab's config: tunnel -> shards, best first.
    public func whereabouts(shards: Int) async throws -> [String: [Int]] {
        let result = try await warren(["where", "--shards", "\(shards)", "--json"])
        guard result.status == 0 else { throw FixtureError("warren where failed: \(result)") }
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        var out: [String: [Int]] = [:]
        for tunnel in object?["tunnels"] as? [[String: Any]] ?? [] {
            let placements = tunnel["placements"] as? [[String: Any]] ?? []
            out[tunnel["tunnel"] as? String ?? ""] = placements.compactMap { $0["shard"] as? Int }
        }
        return out
    }

    /// Waits until every running shard reports each tunnel `up` if it is its
    /// own and `other_shard` if not; returns tunnel -> shards that run it.
    public func waitUntilSettled(timeout: Duration = .seconds(90)) -> [String: Set<Int>]? {
        var running: [String: Set<Int>] = [:]
        let settled = waitUntil(timeout: timeout, every: .milliseconds(200)) {
            running = [:]
            for (index, supervisor) in shards where supervisor.process.isAlive {
                guard let report = supervisor.status(), report.supervisorPid == supervisor.process.pid,
                    report.tunnels.count == localPorts.count
                else { return false }
                for tunnel in report.tunnels {
                    switch tunnel.state {
                    case .up: running[tunnel.name, default: []].insert(index)
                    case .otherShard: continue
                    default: return false
                    }
                }
            }
            return true
        }
        return settled ? running : nil
    }

    /// Whether the tunnel answers (bytes echo back) on shard `index`'s address.
    public func answers(_ tunnel: String, onShard index: Int) -> Bool {
        guard let port = localPorts[tunnel] else { return false }
        return (try? TCPClient.echo(host: Self.shardAddress(index), port: port, timeout: .seconds(5))) ?? false
    }

    /// The tail of every shard's log, for a failure message.
    public func shardLogs() -> String {
        shards.sorted { $0.key < $1.key }
            .map { "--- shard \($0.key)\n" + $0.value.logText().split(separator: "\n").suffix(15).joined(separator: "\n") }
            .joined(separator: "\n")
    }
}
