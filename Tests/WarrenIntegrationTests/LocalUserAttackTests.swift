import Foundation
import Testing
import WarrenCore
import WarrenRuntime
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 19: another local user (nobody) against a root `warren run`, over
/// loopback: each test performs the attack and checks the safe outcome.
@Suite(.serialized) struct LocalUserAttackTests {
    /// The hard limit this machine lets root set (here 20,000; the issue's
    /// 524,288 needs CAP_SYS_RESOURCE above it).
    static var hardLimit: UInt64 {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return UInt64(limit.rlim_max)
    }

    /// Idle connections by nobody to a dynamic forward: with warren's raised
    /// limit handed on, ssh accepted them until `channels_alloc 16390 too big`
    /// ended it and every connection through it. With the soft limit warren
    /// started with (1024), ssh only fails to accept more.
    @Test func aFloodOfConnectionsByAnotherUserLeavesTheTunnelsSSHRunning() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let port = try FreePort.find()
        let warren = try lab.startSupervisor(
            config: SupervisorConfig.tunnel("socks", sshd: lab.sshd, dynamic: ["127.0.0.1:\(port)"]),
            launcher: ["/usr/bin/prlimit", "--nofile=1024:\(Self.hardLimit)", "--"])
        defer { warren.stop() }
        try require(warren.waitForState("socks", .up), "socks up", warren)
        let ssh = try #require(warren.sshPID("socks"))
        #expect(ProcessTable.openFileLimit(warren.process.pid)?.soft == Self.hardLimit, "warren raised its own limit")
        let given = try #require(ProcessTable.openFileLimit(ssh))
        #expect(given.soft == 1024, "ssh got the limit warren started with: \(given)")

        let held = try #require(try Socks5.connect(proxyPort: port, targetPort: lab.target.port), "a connection through the forward")
        defer { close(held) }
        let flood = try LocalAttacker.flood(lab, port: port)
        defer { _ = flood.terminate() }
        // Every connect is made, and ssh has taken all it can (it says so), or the flood ended it.
        let settled = waitUntil(timeout: .seconds(90), every: .milliseconds(100)) {
            LocalAttacker.connected(flood) > 0
                && (!ProcessTable.exists(ssh) || ProcessTable.isZombie(ssh) || warren.logText().contains("Too many open files"))
        }
        let connected = LocalAttacker.connected(flood)
        print("flood: \(LocalAttacker.floodSize) connects by nobody, \(connected) handshakes done, ssh holds \(ProcessTable.openFileCount(ssh)) descriptors (soft limit \(given.soft))")
        try require(settled, "ssh refused more connections or died within 90 s (flood: \(flood.logText().suffix(200)))", warren)
        #expect(ProcessTable.exists(ssh) && !ProcessTable.isZombie(ssh), "the tunnel's ssh is still running")
        #expect(connected > 1000, "the flood reached ssh: \(connected) connections")
        #expect(TCPClient.echo(on: held), "the connection opened before the flood still passes data")
        #expect(warren.tunnel("socks")?.state == .up && warren.sshPID("socks") == ssh, "same ssh, still up")
        _ = flood.terminate()
        #expect(waitUntil(timeout: .seconds(10)) { (try? Socks5.echo(proxyPort: port, targetPort: lab.target.port)) == true },
                "new connections pass once the flood is gone")
    }

    /// Secrets in warren's environment stayed in every ssh's /proc/PID/environ
    /// (readable by the child's user and root): children now get the allow-list.
    @Test func childrenGetOnlyTheAllowedEnvironment() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let local = try lab.forward()
        let key = SSHKeygen.keyWithoutComment(lab.sshd.hostKeyLine)
        // The hop is the same sshd: ssh runs a second ssh through its ProxyCommand.
        let config = SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec])
            + "[[tunnels.db.jump]]\nhost = \"127.0.0.1\"\nport = \(lab.sshd.port)\nhost_key = \"\(key)\"\n"
        let secrets = ["AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-not-for-ssh", "PGPASSWORD": "db-password-not-for-ssh"]
        let warren = try lab.startSupervisor(config: config, environment: secrets.merging(["LANG": "C.UTF-8", "TZ": "UTC"]) { $1 })
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "db up", warren)
        let children = ProcessTable.descendants(of: warren.process.pid).filter { $0.name == "ssh" && !$0.isZombie }
        #expect(children.count >= 2, "the tunnel's ssh and its hop's: \(children)")
        // PWD: the shell that runs the hop's ProxyCommand sets it.
        let allowed = SSHLaunch.inheritedVariables.union([SSHLaunch.logVariable, "PWD"])
        for child in children {
            let environment = try #require(ProcessTable.environment(child.pid), "environ of \(child.pid)")
            #expect(secrets.keys.allSatisfy { environment[$0] == nil }, "no secret in ssh \(child.pid)'s environment: \(environment.keys.sorted())")
            #expect(Set(environment.keys).isSubset(of: allowed), "only allowed variables: \(environment.keys.sorted())")
            #expect(environment["LANG"] == "C.UTF-8" && environment["TZ"] == "UTC" && environment["PATH"] != nil, "the allowed ones pass")
        }
        #expect(ProcessTable.environment(warren.process.pid)?["PGPASSWORD"] != nil, "warren itself had them")
    }
}
