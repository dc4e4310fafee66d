import Foundation
import WarrenCore

/// Tunnels that log in the same way (the same hosts, users, keys and login
/// methods) prove that login once: while it is not known to work, one of them
/// tries (the scout) and the others wait for its answer. A key the bastion's
/// admin has not added yet then costs one failed login per attempt, not one
/// per tunnel; once the admin adds it, the first success starts the rest.
///
/// Every failed login costs this machine's address 5 s of sshd's
/// PerSourcePenalties (OpenSSH 9.8+; 15 s blocks the address), whatever the
/// tunnel: so a scout's attempt also waits until the estimated penalty of
/// every host it dials leaves room for one more failure (`PenaltyBudget`).
/// Logins already proven are never held back: a tunnel that was up
/// reconnects at once.
public actor LoginGate {
    /// What a tunnel may do.
    public enum Admission: Sendable, Equatable {
        /// Go on to the start throttle.
        case go
        /// Do not try: the scout of the same login was just refused.
        case refused(ExitDiagnosis)
    }

    /// How an attempt that went through the gate ended, as far as the login goes.
    public enum Outcome: Sendable, Equatable {
        /// It logged in (the tunnel came up).
        case loggedIn
        /// The login was refused (`auth_failed`, `key_passphrase`, ...).
        case refused(ExitDiagnosis)
        /// It ended before a login said anything (connect, host key, block),
        /// or the tunnel was stopped.
        case inconclusive
    }

    private struct Group {
        var proven = false
        var scout: String?
        /// The last refusal, and when (the gate's clock).
        var refusal: (diagnosis: ExitDiagnosis, by: String, at: Double)?
        var waiting: [(id: Int, continuation: CheckedContinuation<Admission, Never>)] = []
        /// Tunnels told not to try, to be started once the login is proven.
        var held: [String: AsyncStream<TunnelEvent>.Continuation] = [:]
        var hosts: [String] = []
    }

    private var groups: [String: Group] = [:]
    private var nextWaiter = 0
    private let budget: PenaltyBudget
    /// After a refusal, others of the group do not try on their own timers
    /// for this long (the scout retries on its own); an operator's retry does.
    private let quiet: Double
    private let clock = ContinuousClock()
    private let origin = ContinuousClock.now

    public init(budget: PenaltyBudget = PenaltyBudget(), quiet: Double = 150) {
        self.budget = budget
        self.quiet = quiet
    }

    /// The login a tunnel makes: every host it dials, with the user and the
    /// credentials it offers there.
    public static func key(for tunnel: TunnelConfig) -> String {
        tunnel.endpointsInOrder.map { _, _, e in
            "\(e.user ?? "")@\(e.host.lowercased()):\(e.port) \(e.identityFile) \(e.login)"
        }.joined(separator: " -> ")
    }

    private var now: Double { (ContinuousClock.now - origin).seconds }

    /// Whether `tunnel` may start an attempt of the login `key` to `hosts`
    /// (`host:port` of every sshd it dials). `fresh` is an operator's retry.
    /// `input` receives `.retryNow` once the login is proven, if the answer
    /// was `.refused`.
    public func admit(
        _ key: String, tunnel: String, hosts: [String], fresh: Bool,
        input: AsyncStream<TunnelEvent>.Continuation
    ) async -> Admission {
        var group = groups[key] ?? Group()
        group.hosts = hosts
        group.held[tunnel] = nil
        if group.proven {
            groups[key] = group
            return .go
        }
        if let scout = group.scout, scout != tunnel {
            nextWaiter += 1
            let id = nextWaiter
            groups[key] = group
            let answer: Admission = await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Admission, Never>) in
                    if Task.isCancelled {
                        continuation.resume(returning: Admission.go)
                    } else {
                        groups[key, default: Group()].waiting.append((id, continuation))
                    }
                }
            } onCancel: {
                Task { await self.cancelWaiter(key, id) }
            }
            if case .refused = answer { groups[key, default: Group()].held[tunnel] = input }
            return answer
        }
        if let refusal = group.refusal, !fresh, refusal.by != tunnel, now - refusal.at < quiet {
            group.held[tunnel] = input
            groups[key] = group
            return .refused(Self.heldBack(refusal.diagnosis, by: refusal.by))
        }
        group.scout = tunnel
        groups[key] = group
        // An unproven login may fail: wait until every host it dials has room.
        await budget.reserveFailedLogin(on: hosts)
        return .go
    }

    /// How the attempt `tunnel` made ended; wakes those waiting on it.
    public func settle(_ key: String, tunnel: String, _ outcome: Outcome) async {
        guard var group = groups[key] else { return }
        let wasScout = group.scout == tunnel
        if wasScout { group.scout = nil }
        var answer = Admission.go
        switch outcome {
        case .loggedIn:
            if wasScout { await budget.refundFailedLogin(on: group.hosts) }
            group.proven = true
            group.refusal = nil
            for (_, input) in group.held { input.yield(.retryNow) }
            group.held = [:]
        case .refused(let diagnosis):
            // A proven login that is refused now (the key was removed) cost a failure too.
            if !wasScout { await budget.chargeFailedLogin(on: group.hosts) }
            group.proven = false
            group.refusal = (diagnosis, tunnel, now)
            answer = .refused(Self.heldBack(diagnosis, by: tunnel))
        case .inconclusive:
            guard wasScout else { groups[key] = group; return }
            await budget.refundFailedLogin(on: group.hosts, keeping: PenaltyBudget.abandonedConnection)
        }
        let waiting = group.waiting
        group.waiting = []
        groups[key] = group
        for waiter in waiting { waiter.continuation.resume(returning: answer) }
    }

    private func cancelWaiter(_ key: String, _ id: Int) {
        guard let index = groups[key]?.waiting.firstIndex(where: { $0.id == id }) else { return }
        groups[key]!.waiting.remove(at: index).continuation.resume(returning: .go)
    }

    /// The failure a tunnel held back shows: the scout's, said as such.
    static func heldBack(_ diagnosis: ExitDiagnosis, by scout: String) -> ExitDiagnosis {
        ExitDiagnosis(
            kind: diagnosis.kind,
            message: "not tried: tunnel \(scout), which logs in the same way, was just refused (\(diagnosis.message)); this tunnel starts as soon as that login works (or `warren retry`)")
    }
}
