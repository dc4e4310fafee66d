import Foundation
import Testing
import WarrenCore
import WarrenRuntime
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `share_connection = true`: one ssh master per bastion, each tunnel's
/// forwards added and removed on it, against a real sshd.
@Suite(.serialized) struct SharedConnectionTests {
    func sharedConfig(_ lab: Lab, _ tunnels: [(String, [String])]) -> String {
        tunnels.map { SupervisorConfig.tunnel($0.0, sshd: lab.sshd, local: $0.1, extra: ["share_connection = true"]) }.joined(separator: "\n")
    }

    /// The long-lived ssh processes of the supervisor (not the short `-O` ones).
    func masters(_ warren: WarrenSupervisor) -> [Int32] {
        ProcessTable.descendants(of: warren.process.pid).filter { $0.name == "ssh" && !$0.isZombie }.map(\.pid)
            .filter { ProcessInfoReader.commandLine($0)?.contains("-N") == true }
    }

    @Test func tunnelsToOneBastionRideOneMasterAndComeBackTogether() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let forwards = try (0..<3).map { _ in try lab.forward() }
        let names = ["a", "b", "c"]
        let warren = try lab.startSupervisor(config: sharedConfig(lab, zip(names, forwards).map { ($0, [$1.spec]) }))
        defer { warren.stop() }
        for name in names { try require(warren.waitForState(name, .up), "\(name) up", warren) }
        for forward in forwards { #expect(try TCPClient.echo(port: forward.port)) }
        let pids = Set(names.compactMap { warren.tunnel($0)?.pid })
        #expect(pids.count == 1, "every tunnel reports the one master: \(pids)")
        #expect(masters(warren).count == 1, "one ssh process for three tunnels: \(masters(warren))")
        #expect(lab.sshd.connectionProcesses.filter { !$0.isZombie }.count <= 2, "one connection to the bastion (sshd and its privsep child)")

        let master = try #require(pids.first)
        let killed = ContinuousClock.now
        kill(master, SIGKILL)
        let back = waitUntil(timeout: .seconds(15), every: .milliseconds(5)) {
            names.allSatisfy { warren.tunnel($0)?.state == .up && warren.tunnel($0)?.pid != master }
                && forwards.allSatisfy { (try? TCPClient.echo(port: $0.port)) == true }
        }
        try require(back, "all back on a new master", warren)
        print("shared master killed -> all 3 tunnels back in \(String(format: "%.2f", (ContinuousClock.now - killed).seconds)) s")
        #expect(masters(warren).count == 1)
    }

    @Test func aPortHeldByAnotherProgramFailsThatTunnelOnly() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let good = try lab.forward()
        let squatter = try lab.startTarget()
        defer { squatter.stop() }
        let held = "127.0.0.1:\(squatter.port):127.0.0.1:\(lab.target.port)"
        let warren = try lab.startSupervisor(config: sharedConfig(lab, [("good", [good.spec]), ("held", [held])]))
        defer { warren.stop() }
        try require(warren.waitForState("good", .up), "good up", warren)
        let down = warren.waitFor("held") { $0.lastError?.kind == .localPortInUse }
        try require(down?.state == .backoff, "held: backoff with local_port_in_use", warren)
        #expect(warren.tunnel("good")?.state == .up)
        squatter.stop()
        try require(warren.waitForState("held", .up, timeout: .seconds(10)), "held up once the port is free", warren)
    }

    @Test func aReloadThatAddsAForwardDropsNoOpenConnection() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let a = try lab.forward(), b = try lab.forward(), added = try lab.forward()
        let warren = try lab.startSupervisor(config: sharedConfig(lab, [("a", [a.spec]), ("b", [b.spec])]))
        defer { warren.stop() }
        try require(warren.waitForState("a", .up) && warren.waitForState("b", .up), "up", warren)
        let master = warren.tunnel("a")?.pid
        let throughA = try TCPClient.connect(port: a.port), throughB = try TCPClient.connect(port: b.port)
        defer { close(throughA); close(throughB) }
        #expect(TCPClient.echo(on: throughA) && TCPClient.echo(on: throughB))

        // Tunnel a gets a second forward; b is unchanged.
        try lab.directory.write(sharedConfig(lab, [("a", [a.spec, added.spec]), ("b", [b.spec])]), to: "warren.toml")
        warren.process.signal(SIGHUP)
        let reloaded = warren.waitFor("a") { $0.forwards.count == 2 && $0.state == .up }
        try require(reloaded != nil, "a up with two forwards", warren)
        #expect(try TCPClient.echo(port: added.port), "the new forward passes data")
        #expect(TCPClient.echo(on: throughA), "the connection through a's old forward stayed open (-O cancel closes only the listener)")
        #expect(TCPClient.echo(on: throughB), "the connection through b stayed open")
        #expect(warren.tunnel("b")?.pid == master, "the master was not restarted")
    }

    /// The master opens a dynamic forward only when asked as ssh itself asks
    /// (target host "socks"); an empty one looped on "Port forwarding failed".
    @Test func aSharedConnectionCarriesADynamicForward() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let plain = try lab.forward()
        let socksPort = try FreePort.find()
        let config = sharedConfig(lab, [("plain", [plain.spec])])
            + SupervisorConfig.tunnel("socks", sshd: lab.sshd, dynamic: ["127.0.0.1:\(socksPort)"], extra: ["share_connection = true"])
        let warren = try lab.startSupervisor(config: config)
        defer { warren.stop() }
        try require(warren.waitForState("plain", .up) && warren.waitForState("socks", .up), "both up", warren)
        #expect(warren.tunnel("socks")?.pid == warren.tunnel("plain")?.pid, "the dynamic forward rides the shared master")
        #expect(try Socks5.echo(proxyPort: socksPort, targetPort: lab.target.port), "a SOCKS5 CONNECT passes data")
        #expect(!warren.logText().contains("Port forwarding failed"))
    }
}
