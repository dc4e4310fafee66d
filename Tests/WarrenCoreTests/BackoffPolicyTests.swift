import Testing
import WarrenCore

@Suite struct BackoffPolicyTests {
    let policy = BackoffPolicy(initial: 1, maximum: 60, jitter: 0.2, humanRetry: 300)

    @Test(arguments: [(1, 0.0), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (7, 32.0), (8, 60.0), (50, 60.0)])
    func retriesAtOnceThenGrowsExponentiallyUpToTheCeiling(attempt: Int, base: Double) {
        // random 0.5 is the middle of the jitter band: exactly the base.
        #expect(policy.delay(attempt: attempt, random: 0.5) == base)
    }

    @Test func jitterSpreadsWithinItsBandAndNeverPassesTheCeiling() {
        #expect(policy.delay(attempt: 4, random: 0) == 4 * 0.8)
        #expect(policy.delay(attempt: 4, random: 0.999_999) > 4 * 1.19)
        #expect(policy.delay(attempt: 1, random: 0.999_999) == 0, "the first retry is immediate")
        #expect(policy.delay(attempt: 30, random: 0.999_999) == 60)
        #expect(policy.delay(attempt: 30, random: 0) == 48)
    }

    @Test func humanFailuresRetrySlowly() {
        #expect(policy.humanDelay(random: 0.5) == 300)
        #expect(policy.humanDelay(random: 0) == 240)
        let long = BackoffPolicy(initial: 1, maximum: 900)
        #expect(long.humanDelay(random: 0.5) == 900, "never faster than the normal ceiling")
    }

    @Test func firstRetryNeverExceedsTheConfiguredMinimum() {
        #expect(BackoffPolicy(initial: 0.05, maximum: 1).delay(attempt: 1, random: 0.9) <= 0.05)
    }

    @Test func ceilingIsAtLeastTheFirstDelay() {
        #expect(BackoffPolicy(initial: 10, maximum: 2).maximum == 10)
    }
}
