/// Recognises a bastion or a middlebox that closes idle connections after a
/// fixed span (sshd's `UnusedConnectionTimeout` or `ChannelTimeout`, a NAT's
/// idle timer): the remote closes a connection that carried nothing for about
/// the same time, again and again. One such close cannot be told from a
/// dropped session (ssh prints the same `Connection to H closed by remote
/// host.`); two in a row after about the same idle span can. Pure.
public struct IdleCloses: Sendable, Equatable {
    /// The idle span (seconds) after which the other side closes, once recognised.
    public private(set) var span: Double?
    /// Closes recognised as idle closes (not counting the first, which could
    /// not be told from a drop when it came).
    public private(set) var count = 0
    /// The idle spans of the last quiet closes by the remote (at most two).
    private var recent: [Double] = []

    /// Closes after less idle time than this are drops, not a timer: no
    /// bastion's idle timeout is that short, and a loaded machine can make a
    /// run that is dropped at once look up for a second or two.
    public static let shortestSpan = 4.0

    public init() {}

    /// Takes in a quiet close by the remote of a connection that carried no
    /// channel for `seconds`; returns whether it is an idle close.
    public mutating func observe(idleFor seconds: Double) -> Bool {
        defer { recent = seconds >= Self.shortestSpan ? Array((recent + [seconds]).suffix(2)) : [] }
        guard seconds >= Self.shortestSpan else { return false }
        if let span, Self.similar(span, seconds) {
            count += 1
            self.span = span + (seconds - span) / Double(count + 1)
            return true
        }
        // Once the timer is known, a quiet close after more idle time than it
        // is the same timer started later (the far side saw traffic warren
        // does not count, a keepalive or a probe's channel): never sooner.
        if let span, seconds > span {
            count += 1
            return true
        }
        if let earlier = recent.last(where: { Self.similar($0, seconds) }) {
            // Two closes after a shorter span than the one known: the timer's own.
            span = min(span ?? .infinity, (earlier + seconds) / 2)
            count += 1
            return true
        }
        return false
    }

    /// Any other end of a run that was up (a failure, a close while busy):
    /// the next quiet close is judged afresh against the recognised span only.
    public mutating func interrupted() {
        recent = []
    }

    /// Within a second, or a fifth of the longer span.
    static func similar(_ a: Double, _ b: Double) -> Bool {
        abs(a - b) <= max(1.0, 0.2 * max(a, b))
    }

    /// What status and doctor say of it.
    public var description: String? {
        guard let span else { return nil }
        return "the bastion (or a firewall or NAT on the way) closes idle connections after about \(Int(span.rounded())) s"
            + " (sshd's UnusedConnectionTimeout or ChannelTimeout, or an idle timer); seen \(count + 1) times:"
            + " warren reconnects at once, which is not a failure; a client arriving during a reconnect may be refused"
    }
}
