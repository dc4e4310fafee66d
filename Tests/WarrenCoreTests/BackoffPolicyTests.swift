import Testing
import WarrenCore

@Suite struct BackoffPolicyTests {
    let policy = BackoffPolicy(initial: 1, maximum: 60, jitter: 0.2, humanRetry: 300)

    @Test(arguments: [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (6, 32.0), (7, 60.0), (50, 60.0)])
    func growsExponentiallyUpToTheCeiling(attempt: Int, base: Double) {
        // random 0.5 is the middle of the jitter band: exactly the base.
        #expect(policy.delay(attempt: attempt, random: 0.5) == base)
    }

    @Test func jitterSpreadsWithinItsBandAndNeverPassesTheCeiling() {
        #expect(policy.delay(attempt: 3, random: 0) == 4 * 0.8)
        #expect(policy.delay(attempt: 3, random: 0.999_999) > 4 * 1.19)
        #expect(policy.delay(attempt: 30, random: 0.999_999) == 60)
        #expect(policy.delay(attempt: 30, random: 0) == 48)
    }

    @Test func humanFailuresRetrySlowly() {
        #expect(policy.humanDelay(random: 0.5) == 300)
        #expect(policy.humanDelay(random: 0) == 240)
        let long = BackoffPolicy(initial: 1, maximum: 900)
        #expect(long.humanDelay(random: 0.5) == 900, "never faster than the normal ceiling")
    }

    @Test func ceilingIsAtLeastTheFirstDelay() {
        #expect(BackoffPolicy(initial: 10, maximum: 2).maximum == 10)
    }
}
