import Foundation
import Synchronization

/// Whether the supervisor's loop still turns: it handles every status, signal
/// and a tick each second, and says here what it is busy with. `/healthz` and
/// systemd's watchdog ask it instead of the actor: an actor suspended in an
/// `await` (a reload waiting on one tunnel) still answers, while the loop that
/// writes status.json and the metrics for all the others stands still.
public final class SupervisorPulse: Sendable {
    private struct State {
        /// When the loop last finished handling an event (monotonic seconds).
        var turned: Double
        /// What it handles now, and since when; nil between events.
        var busy: (what: String, since: Double)?
    }
    private let state: Mutex<State>

    /// How often the loop is woken when nothing else happens.
    static let tick: Duration = .seconds(1)

    public init(now: Double = SupervisorPulse.now()) {
        state = Mutex(State(turned: now))
    }

    func begin(_ what: String, now: Double = SupervisorPulse.now()) {
        state.withLock { $0.busy = (what, now) }
    }

    func end(now: Double = SupervisorPulse.now()) {
        state.withLock { state in
            state.busy = nil
            state.turned = now
        }
    }

    /// nil while the loop turns; else what is stalled and for how long, once
    /// that is longer than `limit` seconds.
    public func stall(limit: Double, now: Double = SupervisorPulse.now()) -> String? {
        let (turned, busy) = state.withLock { ($0.turned, $0.busy) }
        if let busy, now - busy.since > limit {
            return "the supervisor's loop is stalled: busy with \(busy.what) for \(Int(now - busy.since)) s; status.json and the metrics are not updated meanwhile"
        }
        if busy == nil, now - turned > limit {
            return "the supervisor's loop is stalled: it has not turned for \(Int(now - turned)) s; status.json and the metrics are not updated meanwhile"
        }
        return nil
    }

    public static func now() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
