import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// Issue 19, item 5: a forward beyond loopback is open to every host that
/// reaches it, with no authentication. Each command names it; a SOCKS proxy
/// there (an open door into the bastion's network) needs allow_public_socks.
/// Nothing here listens beyond loopback: the public address is 192.0.2.1
/// (TEST-NET-1, on no interface), so ssh fails to bind it and the tests see
/// only what warren says.
@Suite(.serialized) struct PublicForwardTests {
    static let publicAddress = "192.0.2.1"

    @Test func validateWhereAndAuthorizedKeyNameEachForwardBeyondLoopback() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (open, lo, star, zero, quiet) = try (FreePort.find(), FreePort.find(), FreePort.find(), FreePort.find(), FreePort.find())
        let target = lab.target.port
        try lab.writeConfig(SupervisorConfig.tunnel(
            "exposed", sshd: lab.sshd,
            local: ["0.0.0.0:\(open):127.0.0.1:\(target)", "127.0.0.1:\(lo):127.0.0.1:\(target)"],
            remote: ["*:\(star):127.0.0.1:\(target)", "0.0.0.0:\(zero):127.0.0.1:\(target)", "127.0.0.1:\(quiet):127.0.0.1:\(target)"]))

        let validate = try await lab.warren(["validate"])
        #expect(validate.status == 0, "\(validate)")
        let `where` = try await lab.warren(["where", "--shards", "2"])
        #expect(`where`.status == 0, "\(`where`)")
        for output in [validate.stderr, `where`.stderr] {
            #expect(output.contains("tunnels.exposed.local_forward[0] listens on 0.0.0.0:\(open), beyond loopback: every host that can reach this machine there connects through the bastion to 127.0.0.1:\(target), with no authentication"), "\(output)")
            #expect(output.contains("tunnels.exposed.remote_forward[0] asks the bastion to listen on *:\(star), beyond its loopback"), "\(output)")
            #expect(output.contains("tunnels.exposed.remote_forward[1] asks the bastion to listen on 0.0.0.0:\(zero)"), "\(output)")
            #expect(!output.contains("local_forward[1]") && !output.contains("remote_forward[2]"), "loopback forwards are not named: \(output)")
        }

        let key = try await lab.warren(["authorized-key", "exposed", "--line-only"])
        #expect(key.status == 0, "\(key)")
        #expect(key.stdout.contains("permitlisten=\"*:\(star)\"") && key.stdout.split(separator: "\n").count == 1, "\(key)")
        for (address, index) in [("*:\(star)", 0), ("0.0.0.0:\(zero)", 1)] {
            #expect(key.stderr.contains("warning: this key's permitlisten lets it listen on \(address) of the bastion: tunnels.exposed.remote_forward[\(index)]"), "\(key)")
        }
        #expect(!key.stderr.contains("127.0.0.1:\(quiet) of the bastion"), "\(key)")
    }

    @Test func aSocksProxyBeyondLoopbackIsRefusedUntilOptedIn() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let socks = try FreePort.find()
        let tunnel = SupervisorConfig.tunnel("proxy", sshd: lab.sshd, dynamic: ["\(Self.publicAddress):\(socks)"])
        try lab.writeConfig(tunnel)
        let refused = try await lab.warren(["validate"])
        #expect(refused.status == 78, "\(refused)")
        #expect(refused.stderr.contains(lab.configPath) && refused.stderr.contains("tunnels.proxy.dynamic_forward[0]"), "file and key: \(refused)")
        #expect(refused.stderr.contains("an unauthenticated SOCKS proxy") && refused.stderr.contains("set allow_public_socks = true in [tunnels.proxy] (or [defaults])"), "\(refused)")

        try lab.writeConfig("[defaults]\nallow_public_socks = \"yes\"\n" + tunnel)
        let badValue = try await lab.warren(["validate"])
        #expect(badValue.status == 78 && badValue.stderr.contains("defaults.allow_public_socks"), "\(badValue)")

        try lab.writeConfig("[defaults]\nallow_public_socks = true\n" + tunnel)
        let allowed = try await lab.warren(["validate"])
        #expect(allowed.status == 0, "\(allowed)")
        #expect(allowed.stderr.contains("warning: tunnels.proxy.dynamic_forward[0] is a SOCKS proxy on \(Self.publicAddress):\(socks), beyond loopback"), "\(allowed)")
    }

    @Test func forwardBindWithADynamicForwardIsRefusedAtStartWithoutTheOptIn() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let socks = try FreePort.find()
        let warren = try lab.startSupervisor(
            config: SupervisorConfig.tunnel("proxy", sshd: lab.sshd, dynamic: ["127.0.0.1:\(socks)"]),
            arguments: ["--forward-bind", Self.publicAddress])
        let code = warren.process.waitForExit(timeout: .seconds(20))
        #expect(code == 78, "exit \(String(describing: code)): \(warren.logText())")
        let log = warren.logText()
        #expect(log.contains("tunnels.proxy.dynamic_forward[0]: with --forward-bind \(Self.publicAddress), this forward listens on \(Self.publicAddress):\(socks), beyond loopback"), "\(log)")
        #expect(log.contains("allow_public_socks = true"), "\(log)")
        #expect(lab.sshProcesses().isEmpty, "no ssh was started")
    }

    /// With the opt-in, the proxy runs where --forward-bind puts it, and the
    /// start log and `check` (text and JSON) say what it opens.
    @Test func theOptedInProxyIsNamedInTheStartLogAndByCheck() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let socks = try FreePort.find(), db = try lab.forward()
        let config = SupervisorConfig.tunnel("proxy", sshd: lab.sshd, dynamic: ["127.0.0.1:\(socks)"], extra: ["allow_public_socks = true"])
            + SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [db.spec])
        let warren = try lab.startSupervisor(config: config, arguments: ["--forward-bind", Self.publicAddress])
        defer { _ = warren.stop() }
        let said = "tunnels.proxy.dynamic_forward[0] is a SOCKS proxy on \(Self.publicAddress):\(socks), beyond loopback: every host that can reach this machine there can open connections into the bastion's network"
        #expect(waitUntil(timeout: .seconds(20)) { warren.logText().contains(said) }, "\(warren.logText())")
        // db, moved to the same public address, is named too: it is one database for everyone there.
        #expect(warren.logText().contains("tunnels.db.local_forward[0] listens on \(Self.publicAddress):\(db.port), beyond loopback"), "\(warren.logText())")
        #expect(warren.waitFor("proxy") { $0.lastError != nil } != nil, "ssh cannot bind TEST-NET: the tunnel says so")

        let check = try await CommandRunner.warren(["check", "--config", warren.configPath, "--state-dir", warren.stateDir])
        #expect(check.stdout.contains("proxy: NOTE: \(said)"), "\(check)")
        let json = try await CommandRunner.warren(["check", "--json", "--config", warren.configPath, "--state-dir", warren.stateDir])
        let report = try JSONDecoder().decode(CheckReport.self, from: Data(json.stdout.utf8))
        #expect(report.tunnels.first { $0.name == "proxy" }?.beyondLoopback.first?.hasPrefix("tunnels.proxy.dynamic_forward[0] is a SOCKS proxy") == true, "\(json)")
    }
}
