/// What a live probe through a local forward found (supervisor mode).
public enum LiveProbe: Sendable, Equatable {
    /// The connection was accepted and stayed open, or the target spoke.
    case reachable
    /// Accepted, then closed: the bastion could not reach the target.
    case unreachable(String)
    /// Nothing accepts connections on the local side.
    case notListening(String)
    /// The probe did not finish within the check's time bound.
    case noAnswer
}

/// What the bastion said when asked to reach a target (`ssh -W`), or to open
/// a session when there is no target to ask about (direct mode).
public enum BastionAnswer: Sendable, Equatable {
    /// The bastion opened the connection to the target (or the session).
    case reachable
    /// Logged in, but the bastion could not open a connection to the target
    /// (`target_unreachable`) or may not (`forwarding_forbidden`).
    case targetFailed(FailureKind, String)
    /// ssh could not reach or log in to the bastion.
    case failed(FailureKind, String)
    /// No answer within the check's time bound.
    case noAnswer(String)
}

/// Turns what a check saw into a verdict per tunnel. Pure.
public enum CheckAssessment {
    /// Supervisor mode: the supervisor's status of the tunnel (nil when it does
    /// not report it) and live probes keyed by forward (local and dynamic
    /// forwards, probed only while the supervisor has ssh running).
    public static func assess(_ tunnel: TunnelConfig, status: TunnelStatus?, probes: [Forward: LiveProbe]) -> TunnelCheck {
        let name = tunnel.name
        guard let status, status.state != .stopped, status.state != .otherShard else {
            let forwards = tunnel.forwards.map { ForwardCheck(forward: describe($0), result: .notChecked) }
            var message = "warren runs, but not this tunnel"
            if let status, status.state == .otherShard {
                message = "another shard's: shard \((status.shards ?? []).map(String.init).joined(separator: ", ")) runs it; check it there"
            }
            return TunnelCheck(name: name, state: .down, kind: .notSupervised, message: message, supervisor: status.map(SupervisorView.init), forwards: forwards)
        }
        let view = SupervisorView(status)
        let forwards = tunnel.forwards.map { forward in
            switch probes[forward] {
            case nil: return ForwardCheck(forward: describe(forward), result: .notChecked)
            case .reachable?: return ForwardCheck(forward: describe(forward), result: .reachable)
            case .unreachable(let message)?: return ForwardCheck(forward: describe(forward), result: .unreachable, message: message)
            case .notListening(let message)?: return ForwardCheck(forward: describe(forward), result: .notListening, message: message)
            case .noAnswer?: return ForwardCheck(forward: describe(forward), result: .noAnswer, message: "the probe did not finish in time")
            }
        }
        switch status.state {
        case .stopped, .otherShard:
            preconditionFailure("handled above")
        case .starting, .connecting:
            if let error = status.lastError {
                return TunnelCheck(name: name, state: .down, kind: .failure(error.kind), message: "still \(status.state.rawValue) since \(status.since); last failure: \(error.message)", supervisor: view, forwards: forwards)
            }
            return TunnelCheck(name: name, state: .down, kind: .notReady, message: "still \(status.state.rawValue) since \(status.since)", supervisor: view, forwards: forwards)
        case .backoff, .failed:
            let error = status.lastError ?? TunnelError(kind: .unknown, message: "ssh exited")
            var message = error.message
            if let retry = status.nextRetry { message += " (next retry \(retry))" }
            return TunnelCheck(name: name, state: .down, kind: .failure(error.kind), message: message, supervisor: view, forwards: forwards)
        case .up, .degraded:
            if let bad = forwards.first(where: { $0.result == .notListening }) {
                return TunnelCheck(name: name, state: .down, kind: .notListening, message: bad.message, supervisor: view, forwards: forwards)
            }
            if let bad = forwards.first(where: { $0.result == .unreachable }) {
                let kind = status.lastError?.kind == .forwardingForbidden ? FailureKind.forwardingForbidden : .targetUnreachable
                return TunnelCheck(name: name, state: .degraded, kind: .failure(kind), message: bad.message, supervisor: view, forwards: forwards)
            }
            if forwards.contains(where: { $0.result == .noAnswer }) {
                return TunnelCheck(name: name, state: .unknown, kind: .noAnswer, message: "a probe through a forward did not finish in time", supervisor: view, forwards: forwards)
            }
            let probed = forwards.contains { $0.result == .reachable }
            if status.state == .degraded && !probed {
                // Nothing to probe (remote forwards only): the supervisor's word stands.
                let error = status.lastError ?? TunnelError(kind: .targetUnreachable, message: "degraded")
                return TunnelCheck(name: name, state: .degraded, kind: .failure(error.kind), message: error.message, supervisor: view, forwards: forwards)
            }
            // A live probe that got through is fresher than the supervisor's last one.
            return up(tunnel, supervisor: view, forwards: forwards)
        }
    }

    /// Direct mode: the bastion's answer for each forward that was asked about
    /// (local forwards to a TCP target), and for a session when no forward could
    /// be asked about.
    public static func assess(_ tunnel: TunnelConfig, answers: [Forward: BastionAnswer], session: BastionAnswer?) -> TunnelCheck {
        let forwards = tunnel.forwards.map { forward -> ForwardCheck in
            switch answers[forward] {
            case nil: return ForwardCheck(forward: describe(forward), result: .notChecked)
            case .reachable?: return ForwardCheck(forward: describe(forward), result: .reachable)
            case .targetFailed(_, let message)?: return ForwardCheck(forward: describe(forward), result: .unreachable, message: message)
            case .failed(_, let message)?: return ForwardCheck(forward: describe(forward), result: .failed, message: message)
            case .noAnswer(let message)?: return ForwardCheck(forward: describe(forward), result: .noAnswer, message: message)
            }
        }
        let all = tunnel.forwards.compactMap { answers[$0] } + (session.map { [$0] } ?? [])
        for answer in all {
            if case .failed(let kind, let message) = answer {
                return TunnelCheck(name: tunnel.name, state: .down, kind: .failure(kind), message: message, forwards: forwards)
            }
        }
        for answer in all {
            if case .noAnswer(let message) = answer {
                return TunnelCheck(name: tunnel.name, state: .unknown, kind: .noAnswer, message: message, forwards: forwards)
            }
        }
        for answer in all {
            if case .targetFailed(let kind, let message) = answer {
                return TunnelCheck(name: tunnel.name, state: .degraded, kind: .failure(kind), message: message, forwards: forwards)
            }
        }
        if all.isEmpty {
            return TunnelCheck(name: tunnel.name, state: .unknown, kind: .noAnswer, message: "nothing was asked of the bastion", forwards: forwards)
        }
        return up(tunnel, supervisor: nil, forwards: forwards)
    }

    /// Up: OK, or WARNING when a hop's host key is not checked (`insecure-no-check`).
    static func up(_ tunnel: TunnelConfig, supervisor: SupervisorView?, forwards: [ForwardCheck]) -> TunnelCheck {
        guard !tunnel.checksHostKeys else { return TunnelCheck(name: tunnel.name, state: .up, supervisor: supervisor, forwards: forwards) }
        return TunnelCheck(
            name: tunnel.name, state: .up, kind: .hostKeyNotChecked,
            message: "host keys are not checked (host_key_policy = \"insecure-no-check\")", supervisor: supervisor, forwards: forwards)
    }

    /// The forwards direct mode asks the bastion about: local forwards to a TCP target.
    public static func askable(_ tunnel: TunnelConfig) -> [Forward] {
        tunnel.localForwards.filter {
            if case .tcp? = $0.target { return true }
            return false
        }
    }

    /// The forwards supervisor mode probes: those listening on this machine.
    public static func probeable(_ tunnel: TunnelConfig) -> [Forward] {
        tunnel.localForwards + tunnel.dynamicForwards
    }

    public static func describe(_ forward: Forward) -> String {
        switch forward.kind {
        case .local: return "L \(forward)"
        case .remote: return "R \(forward)"
        case .dynamic: return "D \(forward)"
        }
    }
}
