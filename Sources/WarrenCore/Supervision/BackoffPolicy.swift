/// When to start a tunnel's next ssh after one ended.
///
/// The rule, in DESIGN terms: a run that reached `up` proved the path, so when
/// it ends the next attempt starts at once, whatever happened before. Only
/// attempts that never reached `up` back off: `backoff_min` doubling up to
/// `backoff_max`, spread by jitter, and a slow retry for failures that need a
/// human (auth, host key, key file).
///
/// One guard keeps "at once" from becoming a tight loop against a bastion that
/// accepts and drops at once: a run that was up for less than `steadyAfter`
/// (1 s) is a *quick drop*. The first `freeQuickDrops` quick drops in a row
/// still reconnect at once; past that, each further one waits like a failed
/// attempt. Any run that stays up `steadyAfter` or longer starts the count
/// over, so no ordinary recovery is ever delayed.
public struct BackoffPolicy: Sendable, Equatable {
    /// The first delay after a failed attempt, seconds (`backoff_min`).
    public var initial: Double
    /// The ceiling, seconds (`backoff_max`).
    public var maximum: Double
    public var multiplier: Double
    /// The fraction by which a delay is randomly shortened or lengthened, so that
    /// many tunnels that failed together do not retry together.
    public var jitter: Double
    /// The delay for failures that need a human (auth, host key, key file).
    public var humanRetry: Double
    /// The retry interval while the bastion refuses this address before its
    /// banner (`address_blocked`): steady, not growing, because an attempt
    /// dropped during a block adds nothing to it, and the tunnel should be
    /// back within seconds of the block's end.
    public var blockedRetry: Double
    /// A run up at least this long (seconds) was steady: its end is never delayed.
    public var steadyAfter: Double
    /// How many quick drops in a row reconnect at once before the budget runs out.
    public var freeQuickDrops: Int

    public init(
        initial: Double, maximum: Double, multiplier: Double = 2, jitter: Double = 0.2,
        humanRetry: Double = 300, blockedRetry: Double = 3, steadyAfter: Double = 1, freeQuickDrops: Int = 5
    ) {
        self.initial = initial
        self.maximum = max(initial, maximum)
        self.multiplier = multiplier
        self.jitter = jitter
        self.humanRetry = humanRetry
        self.blockedRetry = blockedRetry
        self.steadyAfter = steadyAfter
        self.freeQuickDrops = freeQuickDrops
    }

    public init(for tunnel: TunnelConfig) {
        self.init(initial: tunnel.backoffMin, maximum: tunnel.backoffMax)
    }

    /// How a run ended, as far as the policy cares.
    public enum RunEnd: Sendable, Equatable {
        /// It reached `up` and stayed up this many seconds.
        case wasUp(seconds: Double)
        /// It never reached `up` (could not connect, log in or bind).
        case neverUp(needsHuman: Bool)
        /// The bastion closed the connection before its banner: it refuses
        /// this address for now (`address_blocked`).
        case blocked
    }

    /// What the policy remembers between runs: failures and quick drops in a row.
    public struct Streak: Sendable, Equatable {
        /// Attempts in a row that never reached `up`.
        public internal(set) var failures = 0
        /// Runs in a row that were up for less than `steadyAfter`.
        public internal(set) var quickDrops = 0
        public init() {}
    }

    /// The delay before the next attempt after a run ended, and the streak to
    /// keep for the one after.
    /// - Parameter random: a number in 0..<1 (the runtime passes a random one).
    public func next(after end: RunEnd, streak: Streak, random: Double) -> (delay: Double, streak: Streak) {
        var streak = streak
        switch end {
        case .wasUp(let seconds):
            streak.failures = 0
            if seconds >= steadyAfter {
                streak.quickDrops = 0
                return (0, streak)
            }
            streak.quickDrops += 1
            let over = streak.quickDrops - freeQuickDrops
            return (over > 0 ? exponential(over, random) : 0, streak)
        case .blocked:
            // Not a failure of the path: the streak stays as it was.
            return (spread(blockedRetry, random), streak)
        case .neverUp(let needsHuman):
            streak.failures += 1
            if needsHuman { return (humanDelay(random: random), streak) }
            // A failed attempt right after quick drops continues their count,
            // so that alternating drop and failure cannot escape the budget.
            let over = max(streak.failures, streak.quickDrops - freeQuickDrops + streak.failures)
            return (exponential(over, random), streak)
        }
    }

    /// The delay before failed attempt number `n` is retried (1 for the first):
    /// `initial` doubling up to `maximum`, spread by the jitter.
    public func exponential(_ n: Int, _ random: Double) -> Double {
        var base = initial
        var i = 1
        while i < n && base < maximum {
            base *= multiplier
            i += 1
        }
        return min(maximum, spread(min(base, maximum), random))
    }

    /// The slow retry for a failure that needs a human.
    public func humanDelay(random: Double) -> Double {
        spread(max(humanRetry, maximum), random)
    }

    private func spread(_ value: Double, _ random: Double) -> Double {
        value * (1 - jitter + 2 * jitter * min(max(random, 0), 1))
    }
}
