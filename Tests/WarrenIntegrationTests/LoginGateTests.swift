import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// The first step of every onboarding: several tunnels with a key the
/// bastion's admin has not added yet. One login is tried for all of them, so
/// the bastion sees one failed login per attempt (sshd 9.8+ penalises each by
/// 5 s, and 15 s blocks the address), and once the key is added one retry
/// brings them all up.
@Suite(.serialized) struct LoginGateTests {
    static let names = ["db1", "db2", "db3", "db4", "db5"]

    /// Failed logins sshd logged (`Connection closed by authenticating user ...`).
    static func failedLogins(_ sshd: SSHDServer) -> Int {
        // sshd's lines end in \r\n, one Character: count occurrences, not lines.
        ((try? String(contentsOfFile: sshd.logPath, encoding: .utf8)) ?? "").components(separatedBy: "by authenticating user").count - 1
    }

    /// sshd logs a failed login a moment after the client has gone: wait for
    /// `count` of them, then say how many there are.
    static func failedLogins(_ sshd: SSHDServer, reaching count: Int) async -> Int {
        _ = await eventually(timeout: .seconds(3)) { failedLogins(sshd) >= count }
        return failedLogins(sshd)
    }

    @Test func tunnelsThatLogInTheSameWayTryOneLoginAndComeUpTogetherOnceItWorks() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (config, ports, publicKey) = try lab.tunnelsWithANewKey(Self.names)
        let warren = try lab.startSupervisor(config: config)
        defer { warren.stop() }
        for name in Self.names {
            _ = await eventually(timeout: .seconds(30)) { warren.tunnel(name)?.state == .failed }
            try require(warren.tunnel(name)?.lastError?.kind == .authFailed, "\(name) waits for the key, named auth_failed", warren)
        }
        let held = Self.names.compactMap { warren.tunnel($0)?.lastError?.message }.filter { $0.hasPrefix("not tried: tunnel ") }
        #expect(held.count == 4, "four were held back for the one that tried: \(held)")
        #expect(await Self.failedLogins(lab.sshd, reaching: 1) == 1, "one failed login, not five")

        // A retry before the admin's step costs one more failed login, not five.
        let early = try await CommandRunner.warren(["retry", "--wait", "10", "--config", warren.configPath, "--state-dir", warren.stateDir])
        #expect(early.status != 0, "\(early)")
        #expect(await Self.failedLogins(lab.sshd, reaching: 2) == 2, "\(early.stdout)")

        // The bastion's admin adds the key; one retry brings all five up.
        try lab.authorize(publicKey)
        let started = ContinuousClock.now
        let retry = try await CommandRunner.warren(["retry", "--wait", "20", "--config", warren.configPath, "--state-dir", warren.stateDir])
        let took = ContinuousClock.now - started
        #expect(retry.status == 0, "\(retry)")
        for (name, port) in zip(Self.names, ports) {
            #expect(await eventually(timeout: .seconds(10)) { warren.tunnel(name)?.state == .up }, "\(name)")
            #expect(try TCPClient.echo(port: port), "\(name) passes data")
        }
        print("five tunnels up \(took) after the retry")
        #expect(took < .seconds(20))
        #expect(await Self.failedLogins(lab.sshd, reaching: 3) == 2, "the login that worked is the only other one")
    }
}
