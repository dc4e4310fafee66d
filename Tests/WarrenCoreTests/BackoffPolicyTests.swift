import Testing
import WarrenCore

@Suite struct BackoffPolicyTests {
    let policy = BackoffPolicy(initial: 1, maximum: 60, jitter: 0.2, humanRetry: 300)

    /// Feeds run ends in order and returns the delay after each (random 0.5:
    /// the middle of the jitter band, exactly the base).
    func delays(_ ends: [BackoffPolicy.RunEnd], policy: BackoffPolicy? = nil) -> [Double] {
        var streak = BackoffPolicy.Streak()
        return ends.map { end in
            let (delay, next) = (policy ?? self.policy).next(after: end, streak: streak, random: 0.5)
            streak = next
            return delay
        }
    }

    @Test func aRunThatWasUpIsFollowedAtOnceWhateverCameBefore() {
        let failed = BackoffPolicy.RunEnd.neverUp(needsHuman: false)
        #expect(delays([failed, failed, failed, .wasUp(seconds: 1.2)]) == [1, 2, 4, 0])
        #expect(delays(Array(repeating: .wasUp(seconds: 1), count: 10)) == Array(repeating: 0, count: 10),
                "ten kills, each after 1 s up: every reconnect at once")
    }

    @Test(arguments: [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (6, 32.0), (7, 60.0), (40, 60.0)])
    func failedAttemptsGrowExponentiallyUpToTheCeiling(failures: Int, last: Double) {
        #expect(delays(Array(repeating: .neverUp(needsHuman: false), count: failures)).last == last)
    }

    @Test func aLossThenFailuresBackOffFromTheStartOnlyForTheFailures() {
        // up, lost (at once), the bastion is down for three tries, then back.
        let ends: [BackoffPolicy.RunEnd] = [.wasUp(seconds: 300), .neverUp(needsHuman: false), .neverUp(needsHuman: false), .wasUp(seconds: 5)]
        #expect(delays(ends) == [0, 1, 2, 0])
    }

    @Test func quickDropsAreFreeUpToTheBudgetThenBackOff() {
        // A bastion that accepts and drops at once, over and over.
        let drops = Array(repeating: BackoffPolicy.RunEnd.wasUp(seconds: 0.05), count: 9)
        #expect(delays(drops) == [0, 0, 0, 0, 0, 1, 2, 4, 8])
        // A run that stays up a second starts the budget over.
        #expect(delays(drops.prefix(7) + [.wasUp(seconds: 1)] + drops.prefix(5)) == [0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0])
    }

    @Test func failuresBetweenQuickDropsDoNotEscapeTheBudget() {
        let drop = BackoffPolicy.RunEnd.wasUp(seconds: 0.1)
        let fail = BackoffPolicy.RunEnd.neverUp(needsHuman: false)
        #expect(delays([drop, drop, drop, drop, drop, drop, fail]) == [0, 0, 0, 0, 0, 1, 2])
    }

    @Test func humanFailuresRetrySlowly() {
        #expect(delays([.neverUp(needsHuman: true)]) == [300])
        #expect(policy.humanDelay(random: 0) == 240)
        let long = BackoffPolicy(initial: 1, maximum: 900)
        #expect(long.humanDelay(random: 0.5) == 900, "never faster than the normal ceiling")
    }

    @Test func jitterSpreadsWithinItsBandAndNeverPassesTheCeiling() {
        #expect(policy.exponential(3, 0) == 4 * 0.8)
        #expect(policy.exponential(3, 0.999_999) > 4 * 1.19)
        #expect(policy.exponential(30, 0.999_999) == 60)
        #expect(policy.exponential(30, 0) == 48)
    }

    @Test func ceilingIsAtLeastTheFirstDelay() {
        #expect(BackoffPolicy(initial: 10, maximum: 2).maximum == 10)
    }
}
