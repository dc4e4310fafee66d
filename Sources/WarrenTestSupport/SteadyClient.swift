import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A client that connects to 127.0.0.1:`port` every `interval`, on its own
/// thread, sends a line and waits for its echo: what a connection pool sees
/// through a fault. Each attempt ends refused (the connect failed), cut (accepted,
/// then closed or silent before the echo), or answered, with its time.
public final class SteadyClient: Sendable {
    public struct Figures: Sendable, CustomStringConvertible {
        public var attempts = 0
        public var answered = 0
        /// The connect was refused (or failed): nobody listened.
        public var refused = 0
        /// Accepted, but closed or silent before the echo came back.
        public var cut = 0
        /// Answered later than `answerLimit`.
        public var late = 0
        /// The longest time from connect to echo among answered ones, seconds.
        public var longest = 0.0
        public var errors: [String] = []

        public var description: String {
            "\(attempts) connections: \(answered) answered (longest \(String(format: "%.0f", longest * 1000)) ms, \(late) late), \(refused) refused, \(cut) cut"
                + (errors.isEmpty ? "" : "; first errors: \(errors.prefix(3).joined(separator: "; "))")
        }
    }

    private let state = Mutex((figures: Figures(), stopped: false, done: false))
    public let port: Int
    public let answerLimit: Double

    public init(port: Int, interval: Duration = .milliseconds(20), answerLimit: Double = 2) {
        self.port = port
        self.answerLimit = answerLimit
        let thread = Thread { [self] in run(interval: interval) }
        thread.name = "steady-client"
        thread.start()
    }

    public var figures: Figures { state.withLock { $0.figures } }

    /// Stops and returns the figures once the last attempt ended.
    public func stop() -> Figures {
        state.withLock { $0.stopped = true }
        _ = waitUntil(timeout: .seconds(10), every: .milliseconds(5)) { state.withLock { $0.done } }
        return figures
    }

    private func run(interval: Duration) {
        var next = ContinuousClock.now
        while !state.withLock({ $0.stopped }) {
            let started = ContinuousClock.now
            let outcome = attempt()
            let took = (ContinuousClock.now - started).seconds
            state.withLock { state in
                state.figures.attempts += 1
                switch outcome {
                case .answered:
                    state.figures.answered += 1
                    state.figures.longest = max(state.figures.longest, took)
                    if took > answerLimit { state.figures.late += 1 }
                case .refused(let why):
                    state.figures.refused += 1
                    if state.figures.errors.count < 5 { state.figures.errors.append("refused: \(why)") }
                case .cut(let why):
                    state.figures.cut += 1
                    if state.figures.errors.count < 5 { state.figures.errors.append("cut: \(why)") }
                }
            }
            next = next.advanced(by: interval)
            let now = ContinuousClock.now
            if next > now { Thread.sleep(forTimeInterval: (next - now).seconds) } else { next = now }
        }
        state.withLock { $0.done = true }
    }

    private enum Outcome { case answered, refused(String), cut(String) }

    private func attempt() -> Outcome {
        let fd: Int32
        do {
            fd = try TCPClient.connect(port: port, timeout: .seconds(5))
        } catch {
            return .refused("\(error)")
        }
        defer { close(fd) }
        let payload = Array("steady \(UInt32.random(in: 0...UInt32.max))\n".utf8)
        return TCPClient.echo(on: fd, payload: payload, timeout: .seconds(5)) ? .answered : .cut("no echo")
    }
}
