/// How an ssh child is stopped, as data: the steps in order (the way
/// swift-subprocess's `Teardown.swift` describes it). A tunnel's machine
/// carries it out with its timers (`terminate`, then the `killGrace` timer);
/// a one-shot ssh (doctor, check) through `ChildControl.stop(_:)`.
public struct Teardown: Sendable, Equatable {
    public enum Step: Sendable, Equatable {
        /// SIGTERM to ssh: it exits within milliseconds, saying why on its way out.
        case terminate
        /// Give it this many seconds.
        case wait(Double)
        /// SIGKILL to its process group: ssh and the jump-hop ssh it started.
        case killGroup
    }

    public var steps: [Step]

    public init(steps: [Step]) {
        self.steps = steps
    }

    /// SIGTERM, `grace` seconds, then SIGKILL to the whole group.
    public static func standard(grace: Double) -> Teardown {
        Teardown(steps: [.terminate, .wait(grace), .killGroup])
    }

    /// How long the steps wait before the kill.
    public var grace: Double {
        steps.reduce(0) { total, step in
            if case .wait(let seconds) = step { return total + seconds }
            return total
        }
    }
}
