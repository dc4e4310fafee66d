import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// Several `warren run --shard I/N` on one machine, as a fleet of pods would
/// run: one real sshd as every tunnel's bastion, one echo target behind it,
/// the same config for every shard, each shard with its own state directory
/// and its forwards on its own loopback address (`--forward-bind 127.0.0.(2+I)`),
/// so that replicas of one tunnel on two shards do not collide.
/// `stop()` (and deinit) stops every supervisor it started, the target and sshd.
final class ShardFleet {
    let sshd: SSHDServer
    let target: TCPTarget
    let directory: TemporaryDirectory
    let config: String
    let configPath: String
    /// The local port of each tunnel's one forward.
    let ports: [String: Int]
    private(set) var supervisors: [Int: WarrenSupervisor] = [:]
    private var shardDirectories: [TemporaryDirectory] = []

    init(tunnels: [String], replicas: Int) throws {
        directory = try TemporaryDirectory(prefix: "wshard-")
        do {
            sshd = try SSHDServer.start()
            target = try TCPTarget.start()
        } catch {
            directory.remove()
            throw error
        }
        var ports: [String: Int] = [:]
        var text = "[defaults]\nreplicas = \(replicas)\n\n"
        for name in tunnels {
            let port = try FreePort.find()
            ports[name] = port
            text += SupervisorConfig.tunnel(name, sshd: sshd, local: ["127.0.0.1:\(port):127.0.0.1:\(target.port)"])
        }
        self.ports = ports
        config = text
        configPath = try directory.write(text, to: "warren.toml")
    }

    /// Shard `index`'s forward address.
    static func address(_ index: Int) -> String { "127.0.0.\(2 + index)" }

    /// Starts shard `index` of `count` in a state directory of its own.
    @discardableResult
    func start(_ index: Int, of count: Int) throws -> WarrenSupervisor {
        let shardDirectory = try TemporaryDirectory(prefix: "wshard-\(index)of\(count)-")
        shardDirectories.append(shardDirectory)
        let supervisor = try WarrenSupervisor.start(
            config: config, in: shardDirectory,
            arguments: ["--shard", "\(index)/\(count)", "--forward-bind", Self.address(index), "--log-level", "info"])
        supervisors[index] = supervisor
        return supervisor
    }

    /// `warren where --shards N --json` on the fleet's config: tunnel -> shards, best first.
    func whereabouts(shards: Int) async throws -> [String: [Int]] {
        let result = try await CommandRunner.warren(["where", "--config", configPath, "--shards", "\(shards)", "--json"])
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
    func waitUntilSettled(shards: Int, timeout: Duration = .seconds(90)) -> [String: Set<Int>]? {
        var running: [String: Set<Int>] = [:]
        let settled = waitUntil(timeout: timeout, every: .milliseconds(200)) {
            running = [:]
            for (index, supervisor) in supervisors where supervisor.process.isAlive {
                guard let report = supervisor.status(), report.supervisorPid == supervisor.process.pid,
                    report.tunnels.count == ports.count
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
    func answers(_ tunnel: String, on index: Int) -> Bool {
        (try? TCPClient.echo(host: Self.address(index), port: ports[tunnel]!, timeout: .seconds(5))) ?? false
    }

    /// The tail of every shard's log, for a failure message.
    func logs() -> String {
        supervisors.sorted { $0.key < $1.key }.map { "--- shard \($0.key)\n" + $0.value.logText().split(separator: "\n").suffix(15).joined(separator: "\n") }
            .joined(separator: "\n")
    }

    /// SIGTERM to every supervisor still running, in parallel, then waits.
    func stopSupervisors() {
        for supervisor in supervisors.values where supervisor.process.isAlive { supervisor.process.signal(SIGTERM) }
        for supervisor in supervisors.values where supervisor.process.termination == nil { supervisor.stop() }
        supervisors = [:]
    }

    func stop() {
        stopSupervisors()
        target.stop()
        sshd.stop()
        for shardDirectory in shardDirectories { shardDirectory.remove() }
        shardDirectories = []
        directory.remove()
    }

    deinit { stop() }
}
