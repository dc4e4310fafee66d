/// Bounds the number of ssh connection attempts in flight, so that a hundred
/// tunnels to one bastion do not trip sshd's MaxStartups (default 10:30:100).
public actor StartThrottle {
    public let limit: Int
    private var inFlight = 0
    private var waiters: [(id: Int, continuation: CheckedContinuation<Bool, Never>)] = []
    private var nextID = 0

    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Waits for a slot. Returns false, holding no slot, when the waiting task
    /// is cancelled (a tunnel stopped while it waited).
    public func acquire() async -> Bool {
        if inFlight < limit {
            inFlight += 1
            return true
        }
        nextID += 1
        let id = nextID
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume(returning: false)
                } else {
                    waiters.append((id, continuation))
                }
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    public func release() {
        if waiters.isEmpty {
            inFlight = max(0, inFlight - 1)
        } else {
            // The slot passes straight to the next waiter.
            waiters.removeFirst().continuation.resume(returning: true)
        }
    }

    /// Attempts in flight now (tests, benchmarks).
    public var busy: Int { inFlight }

    private func cancelWaiter(_ id: Int) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(returning: false)
    }
}
