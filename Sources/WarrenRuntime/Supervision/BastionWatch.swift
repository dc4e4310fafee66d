import Foundation
import WarrenCore

/// Whether a bastion's SSH port accepts connections again, for every tunnel
/// that waits for its sshd to come back (`Watch.bastion`), answered by one
/// connection at a time per bastion. A connection that sshd accepts and that
/// ends before a login costs this machine's address a second of sshd's
/// PerSourcePenalties (OpenSSH 9.8+): twenty tunnels each asking for
/// themselves would block the address the moment sshd is back.
public actor BastionWatch {
    private var answers: [String: (at: ContinuousClock.Instant, accepts: Bool)] = [:]
    private var asking: [String: Task<Bool, Never>] = [:]
    private let budget: PenaltyBudget?

    public init(budget: PenaltyBudget? = nil) {
        self.budget = budget
    }

    /// How long an answer holds for the other tunnels: a refusal until the
    /// next look (0.2 s), an acceptance long enough for every waiting tunnel
    /// to see it and start its ssh (2 s).
    static func holds(_ accepts: Bool) -> Duration { accepts ? .seconds(2) : .milliseconds(200) }

    public func accepts(host: String, port: Int) async -> Bool {
        let key = "\(host.lowercased()):\(port)"
        if let answer = answers[key], ContinuousClock.now - answer.at < Self.holds(answer.accepts) { return answer.accepts }
        if let task = asking[key] { return await task.value }
        let task = Task { await TargetProbe.probe(.tcp(host: host, port: port), wait: 1) == .reachable }
        asking[key] = task
        let accepts = await task.value
        asking[key] = nil
        answers[key] = (ContinuousClock.now, accepts)
        if accepts { await budget?.chargeAbandonedConnection(on: key) }
        return accepts
    }
}
