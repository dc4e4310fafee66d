import Foundation
import WarrenCore

/// Bounds the ssh connection attempts in flight: at most `perBastion` to any
/// one sshd (sshd's MaxStartups, default 10:30:100, starts dropping past 10
/// unauthenticated connections, so a hundred tunnels to one bastion must not
/// all dial at once), and at most `limit` in all (what this machine's CPUs can
/// handshake at once). A thousand tunnels over fifty bastions then start fifty
/// times eight wide, bounded by the CPUs, instead of eight wide in all.
///
/// Waiters are served first come, first served among those that can go: one
/// waiting for a bastion that is full does not hold back one for another
/// bastion.
public actor StartThrottle {
    /// Attempts in flight in all.
    public let limit: Int
    /// Attempts in flight to any one bastion (host:port).
    public let perBastion: Int

    private struct Waiter {
        var id: Int
        var bastions: [String]
        var continuation: CheckedContinuation<Bool, Never>
    }

    private var inFlight = 0
    private var perKey: [String: Int] = [:]
    private var waiters: [Waiter] = []
    private var nextWaiter = 0

    /// - Parameters:
    ///   - limit: attempts in flight in all (`defaultLimit()` sizes it to the CPUs).
    ///   - perBastion: attempts in flight to any one bastion.
    public init(limit: Int, perBastion: Int = 8) {
        self.limit = max(1, limit)
        self.perBastion = max(1, perBastion)
    }

    /// The global limit for this machine: 64 handshakes per CPU. Each one
    /// waits between its bursts of CPU (sshd's fork and re-exec, the round
    /// trips between the two ends), so a few per CPU leave the CPUs idle in
    /// between: 1000 tunnels over 50 bastions on 2 cores came up in 73-77 s
    /// at 8 per CPU and in 68-72 s at 64 (autossh, all at once: 74-78 s).
    /// The per-bastion limit is what keeps each sshd under its MaxStartups.
    public static func defaultLimit(cpus: Int = ProcessInfo.processInfo.activeProcessorCount) -> Int {
        64 * max(1, cpus)
    }

    /// The sshd instances a tunnel's connection attempt dials, as `host:port`:
    /// every ProxyJump hop and the bastion (each one's MaxStartups counts it).
    public static func bastions(of tunnel: TunnelConfig) -> [String] {
        (tunnel.jumps + [tunnel.endpoint]).map { "\($0.host.lowercased()):\($0.port)" }
    }

    /// Waits for a slot counted against the global limit only.
    @discardableResult
    public func acquire() async -> Bool {
        await acquire(bastions: [])
    }

    public func release() {
        release(bastions: [])
    }

    /// Waits for a slot to `bastion` (`host:port`) and in all.
    @discardableResult
    public func acquire(bastion: String) async -> Bool {
        await acquire(bastions: [bastion])
    }

    public func release(bastion: String) {
        release(bastions: [bastion])
    }

    /// Waits until every one of `bastions` and the global count have room,
    /// then takes a slot of each at once (no partial holds, so no deadlock
    /// between tunnels that share some hops). A caller that fits goes at once:
    /// every release admits all waiters that fit, so those still waiting are
    /// waiting for something this caller does not need. Returns false, holding
    /// nothing, when the waiting task is cancelled (a tunnel stopped while it waited).
    @discardableResult
    public func acquire(bastions: [String]) async -> Bool {
        let keys = Array(Set(bastions))
        if fits(keys) {
            take(keys)
            return true
        }
        nextWaiter += 1
        let id = nextWaiter
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume(returning: false)
                } else {
                    waiters.append(Waiter(id: id, bastions: keys, continuation: continuation))
                }
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    private func cancelWaiter(_ id: Int) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(returning: false)
    }

    /// Gives back the slots that `acquire(bastions:)` took, and lets in every
    /// waiter that now fits, oldest first.
    public func release(bastions: [String]) {
        let keys = Array(Set(bastions))
        inFlight = max(0, inFlight - 1)
        for key in keys {
            let left = (perKey[key] ?? 0) - 1
            perKey[key] = left > 0 ? left : nil
        }
        var index = 0
        while index < waiters.count && inFlight < limit {
            if fits(waiters[index].bastions) {
                let waiter = waiters.remove(at: index)
                take(waiter.bastions)
                waiter.continuation.resume(returning: true)
            } else {
                index += 1
            }
        }
    }

    /// Attempts in flight now, in all and to `bastion` (for tests and metrics).
    public func count(bastion: String? = nil) -> Int {
        bastion.map { perKey[$0] ?? 0 } ?? inFlight
    }

    /// Callers waiting for a slot.
    public var waiting: Int { waiters.count }

    /// Attempts in flight now, in all.
    public var busy: Int { inFlight }

    private func fits(_ keys: [String]) -> Bool {
        inFlight < limit && keys.allSatisfy { (perKey[$0] ?? 0) < perBastion }
    }

    private func take(_ keys: [String]) {
        inFlight += 1
        for key in keys { perKey[key, default: 0] += 1 }
    }
}
