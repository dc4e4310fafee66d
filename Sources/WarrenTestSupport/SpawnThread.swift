import Foundation
import Synchronization

/// One long-lived thread from which every fixture process is spawned.
///
/// `PR_SET_PDEATHSIG` (set through `setpriv --pdeathsig KILL`) fires when the
/// *thread* that spawned the child exits, not the process. Swift concurrency's
/// pool threads come and go, so a child spawned from one of them could be killed
/// while the test still needs it. Spawning from a thread that lives as long as
/// the test process makes the death signal mean "the test process died".
final class SpawnThread: Sendable {
    static let shared = SpawnThread()

    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private let wake = DispatchSemaphore(value: 0)

    private init() {
        let thread = Thread { [self] in loop() }
        thread.name = "warren-test-spawn"
        thread.start()
    }

    private func loop() -> Never {
        while true {
            wake.wait()
            let next = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            next?()
        }
    }

    /// Runs `body` on the spawn thread and returns its result; blocks the caller meanwhile.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let job = Job<T>()
        jobs.withLock { list in
            list.append {
                job.result = body()
                job.done.signal()
            }
        }
        wake.signal()
        job.done.wait()
        return job.result!
    }
}

/// The result slot of one job. The semaphore orders the write before the read.
private final class Job<T: Sendable>: @unchecked Sendable {
    var result: T?
    let done = DispatchSemaphore(value: 0)
}
