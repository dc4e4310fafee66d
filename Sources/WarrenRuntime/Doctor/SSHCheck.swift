import Foundation
import Synchronization
import WarrenCore

/// One short ssh run of `warren doctor`, with the generated config, judged
/// line by line by the StderrClassifier as the supervisor judges its children.
struct SSHCheck {
    /// What the run is waiting for.
    enum Goal: Sendable {
        /// Logged in through every hop (N+1 `Authenticated to` lines).
        case authenticated
        /// `ssh -W`: logged in, then the bastion confirmed the channel to the
        /// target (`channel N: open confirm`, a DEBUG2 line: needs `-vv`).
        case channelOpen
        /// `ssh -N` with forwards: every forward bound (the (N+1)th `Entering
        /// interactive session.`), and remote forwards confirmed when there are any.
        case forwardsReady(remote: Bool)
    }

    /// How the run ended, as far as the goal goes.
    enum Result: Sendable {
        var isReached: Bool {
            if case .reached = self { return true }
            return false
        }

        /// The goal was reached after this many seconds; ssh is still running
        /// until `finish()` (or was stopped).
        case reached(seconds: Double)
        /// ssh ended first or stated a failure: why, in the classifier's terms.
        case failed(ExitDiagnosis)
        /// Neither within the time limit.
        case timedOut(seconds: Double, lastLines: [String])
    }

    let launch: SSHLaunch
    let hops: Int
    let goal: Goal
    let timeout: Double

    /// What one run's ssh said so far (its log, read by one `SSHTranscript`).
    final class Watch: Sendable {
        let transcript: Mutex<SSHTranscript>
        private let factsRead = Mutex(LoginFacts())
        let goal: Goal

        init(hops: Int, goal: Goal) {
            self.transcript = Mutex(SSHTranscript(hops: hops))
            self.goal = goal
        }

        func feed(_ line: String) {
            transcript.withLock { _ = $0.read(line) }
            factsRead.withLock { $0.read(line) }
        }

        /// What the run showed about the hosts (see `LoginFacts`).
        var facts: LoginFacts { factsRead.withLock { $0 } }

        var reached: Bool {
            transcript.withLock { said in
                switch goal {
                case .authenticated: return said.loggedIn
                case .channelOpen: return said.channelConfirmed
                case .forwardsReady(let remote): return said.forwardsReady(remote: remote)
                }
            }
        }

        /// A channel that failed: the target's, or a jump hop's that could not reach the next host.
        var failure: ExitDiagnosis? { transcript.withLock { $0.channelFailure } }
        var lines: [String] { transcript.withLock { $0.lines } }
        func diagnosis(exitStatus: Int32?) -> ExitDiagnosis { transcript.withLock { $0.diagnosis(exitStatus: exitStatus) } }
    }

    /// A started run; `finish()` stops ssh (if it still runs) and waits for it.
    final class Running: Sendable {
        let control = ChildControl()
        let watch: Watch
        let task = Mutex<Task<ChildOutcome?, Never>?>(nil)
        /// The first lines the server sent (its banner): shown, never judged.
        let banner = Mutex<[String]>([])

        init(watch: Watch) { self.watch = watch }

        func finish() async -> ChildOutcome? {
            control.stop(.standard(grace: 2))
            return await task.withLock { $0 }?.value
        }
    }

    /// Starts ssh and waits until the goal is reached, ssh ends, or the time
    /// limit passes. On `.reached` ssh still runs: call `finish()` after any
    /// probing. On the other results it has already been stopped.
    func start() async -> (Result, Running) {
        let running = Running(watch: Watch(hops: hops, goal: goal))
        let started = ContinuousClock.now
        let launch = self.launch
        let done = Mutex(false)
        let task = Task { () -> ChildOutcome? in
            defer { done.withLock { $0 = true } }
            // The server's banner is not ssh's log: only the log is judged.
            return try? await SSHChild.run(launch, control: running.control, onOutput: { output in
                switch output {
                case .log(let line): running.watch.feed(line)
                case .server(let text): running.banner.withLock { if $0.count < 3 { $0.append(text) } }
                }
            })
        }
        running.task.withLock { $0 = task }
        let elapsed = { (ContinuousClock.now - started).seconds }
        while true {
            if running.watch.reached { return (.reached(seconds: elapsed()), running) }
            if let failure = running.watch.failure {
                _ = await running.finish()
                return (.failed(failure), running)
            }
            if done.withLock({ $0 }) {
                let outcome = await task.value
                if running.watch.reached { return (.reached(seconds: elapsed()), running) }
                let status = outcome?.exitCode ?? outcome.flatMap { $0.signal.map { 128 + $0 } }
                return (.failed(running.watch.diagnosis(exitStatus: status)), running)
            }
            if elapsed() > timeout {
                _ = await running.finish()
                return (.timedOut(seconds: elapsed(), lastLines: running.watch.lines), running)
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

extension Duration {
    var seconds: Double {
        let (whole, atto) = components
        return Double(whole) + Double(atto) / 1e18
    }
}
