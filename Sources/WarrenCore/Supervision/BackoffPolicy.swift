/// When to retry a tunnel whose ssh exited: exponential with jitter, bounded,
/// and slow for failures that only a human can fix.
public struct BackoffPolicy: Sendable, Equatable {
    /// The first delay, seconds (`backoff_min`).
    public var initial: Double
    /// The ceiling, seconds (`backoff_max`).
    public var maximum: Double
    public var multiplier: Double
    /// The fraction by which a delay is randomly shortened or lengthened, so that
    /// many tunnels that failed together do not retry together.
    public var jitter: Double
    /// A tunnel that stayed up this long has its attempt count reset.
    public var stableAfter: Double
    /// The delay for failures that need a human (auth, host key, key file).
    public var humanRetry: Double

    public init(
        initial: Double, maximum: Double, multiplier: Double = 2, jitter: Double = 0.2,
        stableAfter: Double = 30, humanRetry: Double = 300
    ) {
        self.initial = initial
        self.maximum = max(initial, maximum)
        self.multiplier = multiplier
        self.jitter = jitter
        self.stableAfter = stableAfter
        self.humanRetry = humanRetry
    }

    public init(for tunnel: TunnelConfig) {
        self.init(initial: tunnel.backoffMin, maximum: tunnel.backoffMax, stableAfter: max(30, tunnel.backoffMax / 2))
    }

    /// How soon the first retry after a failure comes: at once, so a tunnel
    /// that was fine and lost its ssh (killed, the bastion dropped it) is back
    /// as fast as autossh brings it back; only failures in a row back off. (A
    /// 0.1 s first delay measured as 0.1 s slower recovery than autossh in
    /// `make bench`, and bought nothing: the second failure waits anyway.)
    public static let firstRetry = 0.0

    /// The delay before retry number `attempt` (1 for the first retry after a
    /// run that failed): `firstRetry`, then `initial` doubling up to `maximum`,
    /// each spread by the jitter.
    /// - Parameter random: a number in 0..<1 (the runtime passes a random one).
    public func delay(attempt: Int, random: Double) -> Double {
        if attempt <= 1 { return min(initial, spread(Self.firstRetry, random)) }
        let exponent = Double(attempt - 2)
        let base = min(maximum, initial * pow(multiplier, exponent))
        return min(maximum, spread(base, random))
    }

    /// The slow retry for a failure that needs a human.
    public func humanDelay(random: Double) -> Double {
        spread(max(humanRetry, maximum), random)
    }

    private func spread(_ value: Double, _ random: Double) -> Double {
        value * (1 - jitter + 2 * jitter * min(max(random, 0), 1))
    }

    private func pow(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        var i = 0.0
        while i < exponent && result < 1e9 {
            result *= base
            i += 1
        }
        return result
    }
}
