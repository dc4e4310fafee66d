import Foundation
import Synchronization
import WarrenCore

/// One shared connection's master, as its members see it: up (with its pid)
/// or not (with its last error). The master's runner publishes here; members
/// wait here for it to come up, or to go down under their forwards.
public final class SharedMaster: Sendable {
    public let share: ConnectionShare
    public let controlPath: String
    private let state = Mutex(State())

    private struct State {
        var pid: Int32?
        var lastError: TunnelError?
        /// Bumped at every change, so that a waiter never misses one.
        var version = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    /// What a member sees at one moment.
    public struct Snapshot: Sendable {
        public var pid: Int32?
        public var lastError: TunnelError?
        var version: Int
    }

    public init(share: ConnectionShare, controlPath: String) {
        self.share = share
        self.controlPath = controlPath
    }

    public var snapshot: Snapshot { state.withLock { Snapshot(pid: $0.pid, lastError: $0.lastError, version: $0.version) } }

    /// Takes in the master's status: up while it is up (or degraded).
    func update(_ status: TunnelStatus) {
        let pid = status.state == .up || status.state == .degraded ? status.pid : nil
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            let error = status.lastError ?? (pid == nil ? state.lastError : nil)
            guard pid != state.pid || error != state.lastError else { return [] }
            state.pid = pid
            state.lastError = error
            state.version += 1
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the master changed since `seen` (or the task is cancelled).
    func changed(since seen: Snapshot) async {
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.version != seen.version || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
