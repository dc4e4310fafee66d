import Foundation
import Synchronization
import Testing
import WarrenCore
import WarrenRuntime
import WarrenTestSupport

/// The start budget: per bastion (MaxStartups is per sshd) and in all.
@Suite struct StartThrottleTests {
    /// Holders that took a slot and keep it until `release` is called for them.
    final class Holders: Sendable {
        let throttle: StartThrottle
        private let order = Mutex<[Int]>([])

        init(_ throttle: StartThrottle) { self.throttle = throttle }

        /// Starts `count` tasks, numbered from `first`, each waiting for a slot to `bastions`.
        func start(_ count: Int, first: Int = 0, bastions: [String]) {
            for index in first..<(first + count) {
                Task {
                    await throttle.acquire(bastions: bastions)
                    order.withLock { $0.append(index) }
                }
            }
        }

        var admitted: [Int] { order.withLock { $0 } }

        /// Waits until `n` callers are admitted and `queued` wait. Generous: in
        /// the full suite, tests that block pool threads can hold these tasks
        /// back for more than ten seconds on a 2-core machine.
        func settle(admitted n: Int, queued: Int) async -> Bool {
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                if admitted.count == n, await throttle.waiting == queued { return true }
                try? await Task.sleep(for: .milliseconds(5))
            }
            return false
        }
    }

    @Test func atMostEightInFlightToOneBastion() async {
        let holders = Holders(StartThrottle(limit: 100, perBastion: 8))
        holders.start(20, bastions: ["db-a:22"])
        #expect(await holders.settle(admitted: 8, queued: 12))
        #expect(await holders.throttle.count(bastion: "db-a:22") == 8)
        await holders.throttle.release(bastion: "db-a:22")
        #expect(await holders.settle(admitted: 9, queued: 11), "a release lets exactly one more in")
        #expect(await holders.throttle.count(bastion: "db-a:22") == 8)
    }

    @Test func aFullBastionDoesNotHoldBackAnother() async {
        let holders = Holders(StartThrottle(limit: 100, perBastion: 8))
        holders.start(12, bastions: ["db-a:22"])
        #expect(await holders.settle(admitted: 8, queued: 4))
        holders.start(8, first: 100, bastions: ["db-b:22"])
        #expect(await holders.settle(admitted: 16, queued: 4), "db-b's eight go at once while db-a's four wait")
        #expect(holders.admitted.suffix(8).allSatisfy { $0 >= 100 })
    }

    @Test func theGlobalLimitBoundsEveryBastionTogether() async {
        let holders = Holders(StartThrottle(limit: 3, perBastion: 8))
        for (i, host) in ["a", "b", "c", "d"].enumerated() {
            holders.start(1, first: i, bastions: ["\(host):22"])
            if i < 3 { #expect(await holders.settle(admitted: i + 1, queued: 0)) }
        }
        #expect(await holders.settle(admitted: 3, queued: 1))
        await holders.throttle.release(bastion: "a:22")
        #expect(await holders.settle(admitted: 4, queued: 0))
        #expect(holders.admitted == [0, 1, 2, 3])
    }

    @Test func waitersToOneBastionGoInTheOrderTheyCame() async {
        let holders = Holders(StartThrottle(limit: 100, perBastion: 1))
        holders.start(1, bastions: ["a:22"])
        #expect(await holders.settle(admitted: 1, queued: 0))
        for index in 1...5 {
            holders.start(1, first: index, bastions: ["a:22"])
            #expect(await holders.settle(admitted: 1, queued: index))
        }
        for n in 2...6 {
            await holders.throttle.release(bastion: "a:22")
            #expect(await holders.settle(admitted: n, queued: 6 - n))
        }
        #expect(holders.admitted == [0, 1, 2, 3, 4, 5])
    }

    /// A ProxyJump tunnel counts against the jump host and the bastion, and
    /// takes both slots together or neither.
    @Test func aJumpChainNeedsRoomOnEveryHop() async {
        let throttle = StartThrottle(limit: 100, perBastion: 1)
        let holders = Holders(throttle)
        holders.start(1, bastions: ["jump:22"])
        #expect(await holders.settle(admitted: 1, queued: 0))
        holders.start(1, first: 1, bastions: ["jump:22", "db:22"])
        #expect(await holders.settle(admitted: 1, queued: 1))
        #expect(await throttle.count(bastion: "db:22") == 0, "no partial hold on db while jump is full")
        holders.start(1, first: 2, bastions: ["db:22"])
        #expect(await holders.settle(admitted: 2, queued: 1), "db alone still fits")
        await throttle.release(bastion: "jump:22")
        #expect(await holders.settle(admitted: 2, queued: 1), "jump is free but db is not")
        await throttle.release(bastion: "db:22")
        #expect(await holders.settle(admitted: 3, queued: 0))
        #expect(await throttle.count(bastion: "jump:22") == 1)
        #expect(await throttle.count(bastion: "db:22") == 1)
    }

    @Test func acquireWithoutABastionCountsOnlyGlobally() async {
        let throttle = StartThrottle(limit: 2)
        let holders = Holders(throttle)
        holders.start(3, bastions: [])
        #expect(await holders.settle(admitted: 2, queued: 1))
        await throttle.release()
        #expect(await holders.settle(admitted: 3, queued: 0))
        #expect(await throttle.count() == 2)
    }

    @Test func theBastionsOfATunnelAreItsHopsAndItsHost() {
        let key = "/k"
        let tunnel = TunnelConfig(
            name: "t", endpoint: SSHEndpoint(host: "DB.example", port: 2222, user: nil, identityFile: key, hostKeys: []),
            jumps: [SSHEndpoint(host: "jump.example", port: 22, user: "u", identityFile: key, hostKeys: [])])
        #expect(StartThrottle.bastions(of: tunnel) == ["jump.example:22", "db.example:2222"])
    }

    /// The budget in all is `--max-starting-total` (default 64 per CPU); none is refused.
    @Test func theBudgetInAllIsAnOptionAndZeroIsRefused() async throws {
        #expect(StartThrottle.defaultLimit(cpus: 2) == 128 && StartThrottle.defaultLimit(cpus: 0) == 64)
        let refused = try await CommandRunner.warren(["run", "--max-starting-total", "0", "--config", "/nonexistent/warren.toml"])
        #expect(refused.status == 64, "\(refused)")
        #expect(refused.stderr.contains("--max-starting-total must be at least 1"), "\(refused)")
        let help = try await CommandRunner.warren(["run", "--help"])
        #expect(help.stdout.contains("--max-starting-total"), "\(help)")
    }
}
