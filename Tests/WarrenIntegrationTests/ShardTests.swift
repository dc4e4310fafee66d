import Foundation
import Testing
import WarrenCore
import WarrenRuntime
import WarrenTestSupport

/// Beyond one machine: several supervisors share one config, each running the
/// tunnels rendezvous hashing gives its shard, against one real sshd.
@Suite(.serialized) struct ShardTests {
    static let tunnels = ["billing", "crm", "events", "ledger", "orders", "warehouse"]

    @Test func everyTunnelRunsOnExactlyKShardsAndSurvivesALostShard() async throws {
        let fleet = try Lab.fleet(tunnels: Self.tunnels, replicas: 2)
        defer { fleet.stop() }
        let planned = try await fleet.whereabouts(shards: 3)
        for index in 0..<3 { try fleet.startShard(index, of: 3) }
        let running = try #require(fleet.waitUntilSettled(), "the three shards did not settle\n\(fleet.shardLogs())")

        for tunnel in Self.tunnels {
            let shards = try #require(planned[tunnel])
            #expect(running[tunnel] == Set(shards), "\(tunnel) runs on \(running[tunnel] ?? []), where says \(shards)")
            #expect(shards.count == 2 && running[tunnel]?.count == 2)
            for index in 0..<3 {
                // Its own shards serve it; on the others nothing listens there.
                #expect(fleet.answers(tunnel, onShard: index) == shards.contains(index), "\(tunnel) on shard \(index)")
            }
        }
        // Status says which shard it is and whose the other tunnels are.
        let report = try #require(fleet.shard(1)?.status())
        #expect(report.shard == ShardSpec(index: 1, count: 3))
        #expect(report.forwardBind == Lab.shardAddress(1))
        for tunnel in report.tunnels where tunnel.state == .otherShard {
            #expect(tunnel.shards == planned[tunnel.name], "\(tunnel.name)")
        }
        let status = try await CommandRunner.warren(["status", "--state-dir", fleet.shard(1)!.stateDir, "--config", fleet.configPath])
        #expect(status.stdout.contains("shard 1/3"), "\(status)")
        #expect(status.stdout.contains("other_shard"), "\(status)")

        // warren check on a shard's state directory checks that shard's tunnels
        // where they listen, with no --shard or --forward-bind of its own.
        let mine = Self.tunnels.filter { planned[$0]!.contains(1) }
        let check = try await CommandRunner.warren(["check", "--json", "--config", fleet.shard(1)!.configPath, "--state-dir", fleet.shard(1)!.stateDir])
        #expect(check.status == 0, "\(check)")
        let checked = try JSONDecoder().decode(CheckJSON.self, from: Data(check.stdout.utf8))
        #expect(checked.tunnels.map(\.name) == mine && checked.tunnels.allSatisfy { $0.state == "up" }, "\(check.stdout)")

        // A shard dies (SIGKILL, no goodbye): every tunnel still answers on another.
        fleet.shard(0)!.kill()
        for tunnel in Self.tunnels {
            let survivors = planned[tunnel]!.filter { $0 != 0 }
            #expect(!survivors.isEmpty)
            #expect(survivors.allSatisfy { fleet.answers(tunnel, onShard: $0) }, "\(tunnel) does not answer on \(survivors)")
        }
        let lost = Self.tunnels.filter { planned[$0]!.contains(0) }
        #expect(lost.allSatisfy { !fleet.answers($0, onShard: 0) }, "shard 0's forwards died with it")
    }

    @Test func reshardingFromThreeToFourMovesFewTunnels() async throws {
        let fleet = try Lab.fleet(tunnels: Self.tunnels, replicas: 2)
        defer { fleet.stop() }
        for index in 0..<3 { try fleet.startShard(index, of: 3) }
        let before = try #require(fleet.waitUntilSettled(), "three shards did not settle\n\(fleet.shardLogs())")
        fleet.stopSupervisors()
        for index in 0..<4 { try fleet.startShard(index, of: 4) }
        let after = try #require(fleet.waitUntilSettled(), "four shards did not settle\n\(fleet.shardLogs())")
        let planned = try await fleet.whereabouts(shards: 4)
        var moved = 0
        for tunnel in Self.tunnels {
            #expect(after[tunnel] == Set(planned[tunnel] ?? []), "\(tunnel): runs on \(after[tunnel] ?? []), where says \(planned[tunnel] ?? [])")
            #expect(after[tunnel]?.count == 2)
            moved += before[tunnel, default: []].subtracting(after[tunnel, default: []]).count
            for shard in after[tunnel] ?? [] { #expect(fleet.answers(tunnel, onShard: shard), "\(tunnel) on shard \(shard)") }
        }
        // Of the 12 running replicas, only those that the new shard takes move.
        #expect(Double(moved) / Double(2 * Self.tunnels.count) <= 0.4, "\(moved) of \(2 * Self.tunnels.count) replicas moved")
    }

    /// The same figure over many tunnels, computed by `warren where` alone.
    @Test(arguments: [1, 2])
    func whereMovesAtMostFortyPercentFromThreeToFour(_ replicas: Int) async throws {
        let lab = try Lab(prefix: "wwhere-", sshd: nil)
        defer { lab.stop() }
        var text = "[defaults]\nreplicas = \(replicas)\nhost_key_policy = \"accept-new\"\nidentity_file = \"/nonexistent/key\"\n"
        for index in 0..<300 { text += "[tunnels.t\(index)]\nhost = \"bastion.example\"\nlocal_forward = [\"\(20000 + index):db:5432\"]\n" }
        let config = try lab.directory.write(text, to: "warren.toml")
        func placements(_ shards: Int) async throws -> [String: Set<Int>] {
            let result = try await CommandRunner.warren(["where", "--config", config, "--shards", "\(shards)", "--json"])
            let report = try JSONDecoder().decode(WhereJSON.self, from: Data(result.stdout.utf8))
            return Dictionary(uniqueKeysWithValues: report.tunnels.map { ($0.tunnel, Set($0.placements.map(\.shard))) })
        }
        let three = try await placements(3), four = try await placements(4)
        let moved = three.keys.reduce(0) { $0 + three[$1]!.subtracting(four[$1]!).count }
        let fraction = Double(moved) / Double(300 * replicas)
        #expect(fraction <= 0.4 && fraction > 0.1, "\(moved) of \(300 * replicas) placements moved")
        #expect(four.values.allSatisfy { $0.count == replicas })
    }

    /// More shards than tunnels: an idle shard is healthy (its readiness probe passes).
    @Test func aShardWithoutTunnelsChecksOK() async throws {
        let fleet = try Lab.fleet(tunnels: ["solo"], replicas: 1)
        defer { fleet.stop() }
        let owner = try #require(try await fleet.whereabouts(shards: 3)["solo"]?.first)
        let idle = (owner + 1) % 3
        let supervisor = try fleet.startShard(idle, of: 3)
        try require(supervisor.waitForState("solo", .otherShard), "solo is another shard's", supervisor)
        let check = try await CommandRunner.warren(["check", "--config", supervisor.configPath, "--state-dir", supervisor.stateDir])
        #expect(check.status == 0, "\(check)")
        #expect(check.stdout.hasPrefix("WARREN OK - 0/0 tunnels up"), "\(check)")
        let named = try await CommandRunner.warren(["check", "solo", "--config", supervisor.configPath, "--state-dir", supervisor.stateDir])
        #expect(named.status == 2 && named.stdout.contains("another shard's: shard \(owner) runs it"), "\(named)")
    }

    /// SIGHUP with a new replica count: tunnels join and leave the shard.
    @Test func reloadMovesTunnelsInAndOutOfAShard() async throws {
        let fleet = try Lab.fleet(tunnels: ["alpha", "ledger", "orders"], replicas: 1)
        defer { fleet.stop() }
        let planned = try await fleet.whereabouts(shards: 2)
        let supervisor = try fleet.startShard(0, of: 2)
        let elsewhere = try #require(planned.filter { $0.value != [0] }.keys.sorted().first, "every tunnel on shard 0: \(planned)")
        let own = try #require(planned.filter { $0.value == [0] }.keys.sorted().first, "no tunnel on shard 0: \(planned)")
        try require(supervisor.waitForState(elsewhere, .otherShard), "\(elsewhere) is shard 1's", supervisor)
        try require(supervisor.waitForState(own, .up), "\(own) up", supervisor)
        let ownPid = supervisor.sshPID(own)
        let config = try String(contentsOfFile: fleet.configPath, encoding: .utf8)
        try supervisor.reload(with: config.replacingOccurrences(of: "replicas = 1", with: "replicas = 2"))
        try require(supervisor.waitForState(elsewhere, .up), "\(elsewhere) runs here with replicas = 2", supervisor)
        #expect(fleet.answers(elsewhere, onShard: 0))
        // Where a tunnel runs is not how it runs: the one already here keeps its ssh.
        #expect(supervisor.sshPID(own) == ownPid && ownPid != nil)
        try supervisor.reload(with: config)
        let back = supervisor.waitFor(elsewhere) { $0.state == .otherShard }
        try require(back?.state == .otherShard, "\(elsewhere) leaves again", supervisor)
        #expect(back?.shards == [1])
        #expect(!fleet.answers(elsewhere, onShard: 0))
    }

    @Test func systemdStatusCountsOnlyThisShardsTunnels() {
        func status(_ name: String, _ state: TunnelState) -> TunnelStatus {
            TunnelStatus(name: name, state: state, since: "t", pid: nil, restarts: 0, forwards: [], lastError: nil, nextRetry: nil)
        }
        let line = SystemdNotifier.statusLine(["a": status("a", .up), "b": status("b", .otherShard), "c": status("c", .backoff)])
        #expect(line == "STATUS=1/2 tunnels up; down: c")
    }

    @Test func shardErrorsAreClearAndExit78() async throws {
        let fleet = try Lab.fleet(tunnels: ["a", "b"], replicas: 3)
        defer { fleet.stop() }
        let tooFew = try await CommandRunner.warren(["run", "--config", fleet.configPath, "--shard", "0/2", "--state-dir", fleet.directory.appending("s1")])
        #expect(tooFew.status == 78)
        #expect(tooFew.stderr.contains("defaults.replicas: a wants 3 replicas but there are 2 shards"), "\(tooFew)")

        // Only where the host name has no ordinal (else this would start a supervisor).
        if ShardFleetHost.name.range(of: #"-[0-9]+$"#, options: .regularExpression) == nil {
            let auto = try await CommandRunner.warren(["run", "--config", fleet.configPath, "--state-dir", fleet.directory.appending("s2")], environment: ["WARREN_SHARD": "auto/3"])
            #expect(auto.status == 78)
            #expect(auto.stderr.contains("$WARREN_SHARD auto/3: ") && auto.stderr.contains("has none"), "\(auto)")
        }
        let bind = try await CommandRunner.warren(["check", "--config", fleet.configPath, "--forward-bind", "localhost"])
        #expect(bind.status == 3)
        #expect(bind.stderr.contains("--forward-bind: \"localhost\" is not a numeric IP address"), "\(bind)")
    }
}

/// This machine's host name, as `--shard auto/N` reads it.
enum ShardFleetHost {
    static var name: String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, 255)
        return String(cString: buffer)
    }
}

/// The part of `warren check --json` the tests read.
struct CheckJSON: Decodable {
    struct Tunnel: Decodable {
        var name: String
        var state: String
    }
    var tunnels: [Tunnel]
}

/// The part of `warren where --json` the tests read.
struct WhereJSON: Decodable {
    struct Tunnel: Decodable {
        struct Placement: Decodable { var shard: Int }
        var tunnel: String
        var placements: [Placement]
    }
    var tunnels: [Tunnel]
}
