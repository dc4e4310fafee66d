import Testing
import WarrenCore
import WarrenTestSupport

/// A config of `names`, each with one local forward on its own port, through
/// the test loader (key file /keys/id).
func shardConfig(_ names: [String], replicas: Int? = nil, extra: String = "") throws -> WarrenConfig {
    var text = "[defaults]\nidentity_file = \"/keys/id\"\nhost_key_policy = \"accept-new\"\n"
    if let replicas { text += "replicas = \(replicas)\n" }
    for (index, name) in names.enumerated() {
        text += "[tunnels.\(name)]\nhost = \"bastion.example.com\"\nlocal_forward = [\"127.0.0.1:\(20000 + index):db:5432\"]\n"
    }
    return try makeLoader().load(text: text + extra, file: "warren.toml")
}

@Suite struct ShardRequestTests {
    @Test(arguments: [
        ("0/3", ShardRequest.fixed(ShardSpec(index: 0, count: 3))),
        ("2/3", .fixed(ShardSpec(index: 2, count: 3))),
        ("auto/4", .auto(count: 4)),
        ("0/1", .fixed(ShardSpec(index: 0, count: 1))),
    ])
    func parsesValidShards(_ text: String, _ expected: ShardRequest) throws {
        #expect(try ShardRequest.parse(text).get() == expected)
    }

    @Test(arguments: [
        ("3/3", "shards are counted from 0"),
        ("-1/3", "is not one of the 3 shards"),
        ("0/0", "must be 1-1024"),
        ("0/5000", "must be 1-1024"),
        ("1", "is not I/N or auto/N"),
        ("a/3", "is not I/N or auto/N"),
        ("auto", "is not I/N or auto/N"),
        ("1/2/3", "is not I/N or auto/N"),
    ])
    func refusesInvalidShards(_ text: String, _ reason: String) {
        guard case .failure(let error) = ShardRequest.parse(text) else {
            Issue.record("\(text) parsed")
            return
        }
        #expect(error.description.contains(reason), "\(error)")
    }

    @Test(arguments: [("warren-0", 0), ("warren-2", 2), ("tunnels-prod-1", 1)])
    func autoTakesTheHostNamesOrdinal(_ host: String, _ index: Int) throws {
        #expect(try ShardRequest.auto(count: 3).resolve(hostName: host).get() == ShardSpec(index: index, count: 3))
    }

    @Test(arguments: [("vm", "has none"), ("warren-", "has none"), ("warren-x", "has none"), ("warren-3", "shards 0-2")])
    func autoExplainsAHostNameItCannotUse(_ host: String, _ reason: String) {
        guard case .failure(let error) = ShardRequest.auto(count: 3).resolve(hostName: host) else {
            Issue.record("\(host) resolved")
            return
        }
        #expect(error.description.contains(reason), "\(error)")
        #expect(error.description.contains(host))
    }
}

@Suite struct RendezvousTests {
    static let names = (0..<1000).map { "tunnel-\($0)" }

    /// Pinned weights, computed independently with Python's hashlib
    /// (`int.from_bytes(sha256(b"warren-shard\0" + name + b"\0" + index).digest()[:8], "big")`):
    /// a change to the hash or its input would move every tunnel of every fleet
    /// at upgrade time, so it must be deliberate.
    @Test func weightsAreFixedAcrossProcessesAndVersions() {
        #expect(Rendezvous(count: 3).weight(of: "warehouse", on: 0) == 12_929_624_538_814_226_470)
        #expect(Rendezvous(count: 3).weight(of: "reporting", on: 2) == 16_101_048_003_671_858_387)
        let four = Rendezvous(count: 4)
        #expect(four.shards(for: "reporting", replicas: 4) == [2, 3, 0, 1])
        #expect(four.shards(for: "billing", replicas: 4) == [1, 0, 3, 2])
        #expect(four.shards(for: "crm", replicas: 4) == [0, 2, 3, 1])
        #expect(four.shards(for: "warehouse", replicas: 4) == [3, 0, 1, 2])
    }

    @Test func spreadsTunnelsEvenly() {
        let rendezvous = Rendezvous(count: 3)
        var counts = [0, 0, 0]
        for name in Self.names { counts[rendezvous.shards(for: name)[0]] += 1 }
        #expect(counts.allSatisfy { (280...387).contains($0) }, "\(counts)")
    }

    @Test(arguments: [(3, 4), (4, 5), (2, 3), (4, 3)])
    func changingTheShardCountMovesAboutOneInN(_ from: Int, _ to: Int) {
        let before = Rendezvous(count: from), after = Rendezvous(count: to)
        let moved = Self.names.filter { before.shards(for: $0) != after.shards(for: $0) }.count
        let expected = Double(Self.names.count) / Double(max(from, to))
        // About 1/N move (binomial spread on 1000 names), and only those that must.
        #expect(Double(moved) <= expected * 1.2, "\(moved) of 1000 moved from \(from) to \(to) shards")
        #expect(Double(moved) >= expected * 0.8, "\(moved) of 1000 moved from \(from) to \(to) shards")
        for name in Self.names where before.shards(for: name) != after.shards(for: name) {
            // Growing, a tunnel moves only to the new shard; shrinking, only off the removed one.
            if to > from { #expect(after.shards(for: name) == [to - 1]) } else { #expect(before.shards(for: name) == [from - 1]) }
        }
    }

    @Test(arguments: 1...5)
    func replicasLandOnDistinctShards(_ replicas: Int) {
        let rendezvous = Rendezvous(count: 5)
        for name in Self.names.prefix(200) {
            let shards = rendezvous.shards(for: name, replicas: replicas)
            #expect(shards.count == replicas && Set(shards).count == replicas, "\(name): \(shards)")
            // Adding a replica keeps the existing ones where they are.
            #expect(shards.first == rendezvous.shards(for: name)[0])
        }
    }

    @Test func replicasAreSpreadAcrossPairsOfShards() {
        let rendezvous = Rendezvous(count: 4)
        var perShard = [0, 0, 0, 0]
        for name in Self.names { for shard in rendezvous.shards(for: name, replicas: 2) { perShard[shard] += 1 } }
        #expect(perShard.allSatisfy { (420...580).contains($0) }, "\(perShard)")
    }
}

@Suite struct ShardPlanTests {
    @Test func replicasComeFromDefaultsOrTheTunnel() throws {
        let config = try shardConfig(["a", "b"], replicas: 2, extra: "")
        #expect(config.tunnels.map(\.replicas) == [2, 2])
        #expect(config.tunnels[0].replicasKeyPath == "defaults.replicas")
        let own = try makeLoader().load(text: "[tunnels.a]\nhost = \"h\"\nidentity_file = \"/keys/id\"\nhost_key_policy = \"accept-new\"\nlocal_forward = [\"1234:db:5432\"]\nreplicas = 3\n", file: "w.toml")
        #expect(own.tunnels[0].replicas == 3 && own.tunnels[0].replicasKeyPath == "tunnels.a.replicas")
        #expect(try shardConfig(["a"]).tunnels[0].replicas == 1)
    }

    @Test(arguments: [("replicas = 0", "tunnels.a.replicas: 0 is out of range"), ("replicas = \"2\"", "tunnels.a.replicas: must be an integer")])
    func invalidReplicasNameTheKey(_ line: String, _ message: String) {
        let text = "[tunnels.a]\nhost = \"h\"\nidentity_file = \"/keys/id\"\nhost_key_policy = \"accept-new\"\nlocal_forward = [\"1234:db:5432\"]\n\(line)\n"
        #expect(throws: ConfigError.self) { try makeLoader().load(text: text, file: "w.toml") }
        do {
            _ = try makeLoader().load(text: text, file: "w.toml")
        } catch {
            #expect(error.description.contains(message), "\(error)")
        }
    }

    @Test func moreReplicasThanShardsIsAnErrorNamingTheKey() throws {
        let config = try shardConfig(["a", "b"], replicas: 3)
        do {
            _ = try ShardPlan(config, count: 2)
            Issue.record("3 replicas on 2 shards was accepted")
        } catch {
            #expect(error.description.contains("warren.toml: defaults.replicas: a wants 3 replicas but there are 2 shards"), "\(error)")
        }
        #expect(throws: ConfigError.self) { try config.deployed(shard: ShardSpec(index: 0, count: 2), bind: nil) }
        #expect(try ShardPlan(config, count: 3).placements.allSatisfy { $0.shards.count == 3 })
    }

    @Test func everyTunnelRunsOnExactlyItsReplicaCountOfShards() throws {
        let config = try shardConfig((0..<40).map { "t\($0)" }, replicas: 2)
        let plan = try ShardPlan(config, count: 4)
        var runs: [String: Int] = [:]
        for index in 0..<4 {
            let spec = ShardSpec(index: index, count: 4)
            for tunnel in config.tunnels where spec.runs(tunnel) { runs[tunnel.name, default: 0] += 1 }
            #expect(plan.tunnels(on: index) == config.tunnels.filter(spec.runs).map(\.name))
        }
        #expect(runs.count == 40 && runs.values.allSatisfy { $0 == 2 })
    }

    @Test func anotherShardsTunnelIsReportedAsSuch() throws {
        let config = try shardConfig(["a", "b", "c", "d", "e", "f"])
        let spec = ShardSpec(index: 0, count: 3)
        let elsewhere = try #require(config.tunnels.first { !spec.runs($0) })
        let stopped = TunnelStatus(name: elsewhere.name, state: .stopped, since: "now", pid: nil, restarts: 0, forwards: [], lastError: nil, nextRetry: nil)
        let placed = stopped.placed(elsewhere, on: spec)
        #expect(placed.state == .otherShard)
        #expect(placed.shards == Rendezvous(count: 3).shards(for: elsewhere.name))
        #expect(stopped.placed(elsewhere, on: nil) == stopped)
        var disabled = elsewhere
        disabled.enabled = false
        #expect(stopped.placed(disabled, on: spec).state == .stopped)
    }

    @Test func whereGivesEachReplicasAddressBestFirst() throws {
        let config = try shardConfig(["warehouse"], replicas: 2)
        let plan = try ShardPlan(config, count: 3)
        let found = Whereabouts.of(config, plan: plan, hosts: .kubernetes(name: "warren", namespace: "data"))
        let shards = Rendezvous(count: 3).shards(for: "warehouse", replicas: 2)
        #expect(found == [Whereabouts(tunnel: "warehouse", replicas: 2, placements: shards.map {
            Whereabouts.Replica(shard: $0, host: "warren-\($0).warren.data.svc", addresses: ["warren-\($0).warren.data.svc:20000"])
        })])
        #expect(try ShardHosts.parse(template: "tunnels-{shard}.example.com").get().host(2) == "tunnels-2.example.com")
        #expect(throws: ShardError.self) { try ShardHosts.parse(template: "tunnels.example.com").get() }
        #expect(throws: ShardError.self) { try ShardHosts.parse(template: "bad host-{shard}").get() }
    }
}

@Suite struct ForwardBindTests {
    @Test(arguments: ["0.0.0.0", "127.0.0.2", "::", "::1", "[::]", "10.1.2.3"])
    func acceptsNumericAddresses(_ text: String) throws {
        _ = try ForwardBind.parse(text).get()
    }

    @Test(arguments: ["localhost", "example.com", "0.0.0.0 ", "1.2.3", "-1.2.3.4", "", "127.0.0.1\n"])
    func refusesAnythingElse(_ text: String) {
        #expect(throws: ForwardBindError.self) { try ForwardBind.parse(text).get() }
    }

    @Test func movesLocalAndDynamicForwardsOnly() throws {
        let text = """
            [tunnels.a]
            host = "h"
            identity_file = "/keys/id"
            host_key_policy = "accept-new"
            local_forward = ["127.0.0.1:15432:db:5432", "15433:db:5433", "/tmp/a.sock:db:5432"]
            dynamic_forward = ["1080"]
            remote_forward = ["127.0.0.1:8080:localhost:80"]
            allow_public_socks = true
            """
        let config = try makeLoader().load(text: text, file: "w.toml").bindingForwards(to: ForwardBind.parse("0.0.0.0").get())
        let tunnel = config.tunnels[0]
        #expect(tunnel.localForwards.map(\.listen.description) == ["0.0.0.0:15432", "0.0.0.0:15433", "/tmp/a.sock"])
        #expect(tunnel.dynamicForwards.map(\.listen.description) == ["0.0.0.0:1080"])
        #expect(tunnel.remoteForwards.map(\.description) == ["127.0.0.1:8080:localhost:80"])
        let rendered = try shippedRenderer().render(tunnel, configFile: "w.toml", directory: "/state/tunnels/a")
        #expect(rendered.sshConfig.contains("\n  GatewayPorts yes\n"))
        #expect(rendered.sshConfig.contains("LocalForward 0.0.0.0:15432 db:5432"))
        let loopback = try makeLoader().load(text: text, file: "w.toml").bindingForwards(to: ForwardBind.parse("127.0.0.3").get())
        #expect(!(try shippedRenderer().render(loopback.tunnels[0], configFile: "w.toml", directory: "/d").sshConfig.contains("GatewayPorts")))
    }

    /// A SOCKS proxy moved beyond loopback without the opt-in is refused, naming the key and the way to opt in.
    @Test func aDynamicForwardMovedBeyondLoopbackNeedsAllowPublicSocks() throws {
        let text = """
            [tunnels.a]
            host = "h"
            identity_file = "/keys/id"
            host_key_policy = "accept-new"
            dynamic_forward = ["127.0.0.1:1080"]
            """
        let config = try makeLoader().load(text: text, file: "w.toml")
        #expect(throws: ConfigError.self) { try config.bindingForwards(to: ForwardBind.parse("0.0.0.0").get()) }
        do {
            _ = try config.bindingForwards(to: ForwardBind.parse("0.0.0.0").get())
        } catch {
            #expect("\(error)".contains("w.toml: tunnels.a.dynamic_forward[0]: with --forward-bind 0.0.0.0, this forward listens on 0.0.0.0:1080, beyond loopback"), "\(error)")
            #expect("\(error)".contains("allow_public_socks = true"), "\(error)")
        }
        // Another loopback address is no exposure.
        #expect(try config.bindingForwards(to: ForwardBind.parse("127.0.0.3").get()).tunnels[0].dynamicForwards[0].listen.description == "127.0.0.3:1080")
    }

    @Test func forwardsThatCollideOnceMovedAreAnError() throws {
        let text = """
            [defaults]
            identity_file = "/keys/id"
            host_key_policy = "accept-new"
            [tunnels.a]
            host = "h"
            local_forward = ["127.0.0.2:5432:db:5432"]
            [tunnels.b]
            host = "h"
            local_forward = ["127.0.0.3:5432:db:5432"]
            """
        let config = try makeLoader().load(text: text, file: "w.toml")
        do {
            _ = try config.bindingForwards(to: ForwardBind.parse("0.0.0.0").get())
            Issue.record("the collision was accepted")
        } catch {
            #expect("\(error)".contains("w.toml: tunnels.b.local_forward[0]: with --forward-bind 0.0.0.0, this forward listens on 0.0.0.0:5432, which tunnels.a.local_forward[0] also uses"), "\(error)")
        }
    }
}
