/// The result of `warren doctor`, as `--json` prints it.
public struct DoctorReport: Sendable, Codable, Equatable {
    public struct Step: Sendable, Codable, Equatable {
        public var number: Int
        public var id: String
        public var title: String
        /// `pass`, `fail` or `skipped`.
        public var status: String
        public var evidence: [String]
        public var fix: String?
        /// The failure kind (as in status.json) when one applies.
        public var kind: String?
        /// For a skipped step: the failed step that kept it from running.
        public var blockedBy: Int?

        enum CodingKeys: String, CodingKey {
            case number, id, title, status, evidence, fix, kind
            case blockedBy = "blocked_by"
        }

        public init(_ step: DoctorStep, _ outcome: StepOutcome) {
            number = step.rawValue
            id = step.id
            title = step.title
            switch outcome {
            case .passed(let evidence):
                status = "pass"
                self.evidence = evidence
            case .failed(let evidence, let fix, let kind):
                status = "fail"
                self.evidence = evidence
                self.fix = fix
                self.kind = kind?.rawValue
            case .skipped(let blocker):
                status = "skipped"
                evidence = []
                blockedBy = blocker.rawValue
            }
        }
    }

    public var tunnel: String
    public var configFile: String
    /// Every step passed.
    public var ok: Bool
    public var steps: [Step]
    /// The same tunnel as a plain `ssh` command line, for a human to reproduce.
    public var manualCommand: String?
    /// The tunnel exactly as warren runs it: `ssh -F <generated ssh_config> -N <alias>`.
    public var warrenCommand: String?

    enum CodingKeys: String, CodingKey {
        case tunnel, ok, steps
        case configFile = "config_file"
        case manualCommand = "manual_command"
        case warrenCommand = "warren_command"
    }

    public init(tunnel: String, configFile: String, results: [DoctorStep: StepOutcome], manualCommand: String?, warrenCommand: String?) {
        self.tunnel = tunnel
        self.configFile = configFile
        self.steps = DoctorStep.allCases.compactMap { step in results[step].map { Step(step, $0) } }
        self.ok = steps.count == DoctorStep.allCases.count && steps.allSatisfy { $0.status == "pass" }
        self.manualCommand = manualCommand
        self.warrenCommand = warrenCommand
    }

    /// The failed steps, in order.
    public var failedSteps: [Step] { steps.filter { $0.status == "fail" } }
}

/// The human form of the doctor's report. One block per step, printed as each
/// step ends, then a summary with the commands to reproduce the tunnel.
public enum DoctorText {
    public static func header(tunnel: String, configFile: String) -> String {
        "warren doctor \(tunnel)   (config: \(configFile))\n"
    }

    public static func step(_ step: DoctorReport.Step) -> String {
        let mark: String
        switch step.status {
        case "pass": mark = "✓"
        case "fail": mark = "✗"
        default: mark = "-"
        }
        var out = "\(mark) \(step.number). \(step.title)"
        if let blocker = step.blockedBy { out += ": not run (step \(blocker) failed)" }
        out += "\n"
        for line in step.evidence { out += "     \(line)\n" }
        if let fix = step.fix { out += "     fix: \(fix)\n" }
        return out
    }

    public static func summary(_ report: DoctorReport) -> String {
        var out = "\n"
        if report.ok {
            out += "All \(report.steps.count) steps passed.\n"
        } else {
            let failed = report.failedSteps.map { step in "step \(step.number) (\(step.title)\(step.kind.map { ", \($0)" } ?? ""))" }
            out += "Failed: \(failed.joined(separator: "; ")).\n"
        }
        if let manual = report.manualCommand {
            out += "\nReproduce by hand:\n  \(manual)\n"
        }
        if let exact = report.warrenCommand {
            out += "Exactly as warren runs it:\n  \(exact)\n"
        }
        return out
    }
}
