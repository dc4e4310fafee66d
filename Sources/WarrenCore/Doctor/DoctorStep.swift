/// The troubleshooting checklist of `warren doctor`, in the order it runs.
/// Each step runs only when the steps it needs passed; otherwise its result
/// would say nothing (a TCP check when the name does not resolve).
public enum DoctorStep: Int, Sendable, CaseIterable, Comparable {
    /// The config file loads and names the tunnel (a missing key file is left to
    /// step 2), and the state directory is safe to write in (owner, mode, no links).
    case config = 1
    /// The identity file exists, is readable and is 0600 (or stricter).
    case keyFile
    /// The first host ssh dials (the bastion, or the first jump hop) resolves here.
    case nameResolves
    /// A TCP connection to it completes within connect_timeout.
    case tcpConnect
    /// It sends an SSH banner (`SSH-2.0-...`) within connect_timeout.
    case sshBanner
    /// The host key it offers is the pinned one.
    case hostKey
    /// ssh logs in with the tunnel's key, through every hop.
    case authentication
    /// The bastion can open a connection to every local forward's target (`ssh -W`).
    case targets
    /// Every local listener (port or socket) is free on this machine.
    case localPorts
    /// A temporary `ssh -N` with the generated config brings the forwards up and
    /// a connection through each local forward reaches its target.
    case endToEnd

    /// Stable name for `--json`.
    public var id: String {
        switch self {
        case .config: return "config"
        case .keyFile: return "key_file"
        case .nameResolves: return "name_resolves"
        case .tcpConnect: return "tcp_connect"
        case .sshBanner: return "ssh_banner"
        case .hostKey: return "host_key"
        case .authentication: return "authentication"
        case .targets: return "targets"
        case .localPorts: return "local_ports"
        case .endToEnd: return "end_to_end"
        }
    }

    public var title: String {
        switch self {
        case .config: return "config is valid"
        case .keyFile: return "key file present, 0600"
        case .nameResolves: return "host name resolves"
        case .tcpConnect: return "TCP connection within connect_timeout"
        case .sshBanner: return "SSH banner"
        case .hostKey: return "host key matches the pin"
        case .authentication: return "authentication"
        case .targets: return "targets reachable from the bastion"
        case .localPorts: return "local ports free"
        case .endToEnd: return "end to end through a temporary tunnel"
        }
    }

    /// The steps whose success this one needs. Not simply the previous step:
    /// a missing key does not make the network checks meaningless, and a taken
    /// local port does not stop the bastion-side checks; so a run shows every
    /// independent problem, and stops only where results would mean nothing.
    public var requires: [DoctorStep] {
        switch self {
        case .config: return []
        case .keyFile, .nameResolves, .localPorts: return [.config]
        case .tcpConnect: return [.nameResolves]
        case .sshBanner: return [.tcpConnect]
        case .hostKey: return [.sshBanner]
        case .authentication: return [.keyFile, .hostKey]
        case .targets: return [.authentication]
        case .endToEnd: return [.targets, .localPorts]
        }
    }

    public static func < (a: DoctorStep, b: DoctorStep) -> Bool { a.rawValue < b.rawValue }
}

/// How one step ended.
public enum StepOutcome: Sendable, Equatable {
    /// It passed; the evidence says what was seen.
    case passed(evidence: [String])
    /// It failed: what was seen, what to do, and the failure kind when one applies.
    case failed(evidence: [String], fix: String, kind: FailureKind?)
    /// It did not run, because this earlier step failed.
    case skipped(because: DoctorStep)

    public var isPassed: Bool {
        if case .passed = self { return true }
        return false
    }
}

/// Which steps run, from the results so far. Pure.
public enum DoctorPlan {
    /// The failed step that keeps `step` from running, or nil when every step it
    /// needs (and everything they need) passed. A step that was itself skipped
    /// passes on the step that stopped it, so the report names the root cause.
    public static func blocker(of step: DoctorStep, given results: [DoctorStep: StepOutcome]) -> DoctorStep? {
        for requirement in step.requires.sorted() {
            switch results[requirement] {
            case .passed?: continue
            case .failed?: return requirement
            case .skipped(let root)?: return root
            case nil:
                // Not run yet: the steps run in order, so this is a caller's mistake;
                // treat the requirement as the blocker rather than run blind.
                return requirement
            }
        }
        return nil
    }

    /// Runs every step in order through `run`, skipping blocked ones; calls
    /// `report` after each step. The runtime passes its effects in as closures.
    public static func walk(
        run: (DoctorStep) async -> StepOutcome,
        report: (DoctorStep, StepOutcome) async -> Void = { _, _ in }
    ) async -> [DoctorStep: StepOutcome] {
        var results: [DoctorStep: StepOutcome] = [:]
        for step in DoctorStep.allCases {
            let outcome: StepOutcome
            if let blocker = blocker(of: step, given: results) {
                outcome = .skipped(because: blocker)
            } else {
                outcome = await run(step)
            }
            results[step] = outcome
            await report(step, outcome)
        }
        return results
    }
}
