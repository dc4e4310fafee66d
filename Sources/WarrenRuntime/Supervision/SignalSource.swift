@preconcurrency import Dispatch
import Foundation

/// Delivers process signals as an async sequence instead of C handlers doing work.
public final class SignalSource: @unchecked Sendable {
    public let signals: AsyncStream<Int32>
    // Written once in init, only cancelled in deinit.
    private let sources: [any DispatchSourceSignal]

    public init(_ numbers: [Int32]) {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        signals = stream
        var sources: [any DispatchSourceSignal] = []
        for number in numbers {
            // The default action must not run; Dispatch then reports the signal.
            // Children get default dispositions back: swift-subprocess resets every
            // signal (POSIX_SPAWN_SETSIGDEF) and clears the mask when it spawns.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    deinit {
        for source in sources { source.cancel() }
    }
}
