/// A Nagios/Icinga plugin status. The raw values are what the first line of
/// `warren check` starts with; the exit code is the plugin convention's.
public enum CheckStatus: String, Sendable, Codable, CaseIterable {
    case ok = "OK"
    case warning = "WARNING"
    case critical = "CRITICAL"
    case unknown = "UNKNOWN"

    public var exitCode: Int32 {
        switch self {
        case .ok: return 0
        case .warning: return 1
        case .critical: return 2
        case .unknown: return 3
        }
    }

    /// How bad, for combining tunnels: CRITICAL > UNKNOWN > WARNING > OK. A
    /// tunnel warren cannot see may well be down, so it outranks a degraded one.
    var severity: Int {
        switch self {
        case .ok: return 0
        case .warning: return 1
        case .unknown: return 2
        case .critical: return 3
        }
    }

    /// The worst of `statuses` (OK when empty).
    public static func worst(_ statuses: [CheckStatus]) -> CheckStatus {
        statuses.max { $0.severity < $1.severity } ?? .ok
    }
}

/// What `warren check` concluded about one tunnel.
public enum CheckedState: String, Sendable, Codable, CaseIterable {
    /// Connected (or the bastion can connect) and every checked target answers.
    case up
    /// Connected, but a target does not answer through it.
    case degraded
    /// Not connected, or the bastion cannot be reached or refuses warren.
    case down
    /// No answer in time: warren cannot tell.
    case unknown

    public var status: CheckStatus {
        switch self {
        case .up: return .ok
        case .degraded: return .warning
        case .down: return .critical
        case .unknown: return .unknown
        }
    }
}

/// How a check found out.
public enum CheckMode: String, Sendable, Codable {
    /// A supervisor runs for the state directory: its status plus live probes
    /// through the local forwards.
    case supervisor
    /// No supervisor: a one-shot `ssh -W` per forward asks the bastion to reach the target.
    case direct
    /// Nothing was checked (the config or the status could not be read, or
    /// `--require-supervisor` found no supervisor).
    case none
}

/// One forward of a checked tunnel.
public struct ForwardCheck: Sendable, Equatable, Codable {
    public enum Result: String, Sendable, Codable, CaseIterable {
        /// The target answered (through the local port, or from the bastion).
        case reachable
        /// The bastion could not open a connection to the target.
        case unreachable
        /// Nothing accepts connections on the forward's local side.
        case notListening = "not_listening"
        /// ssh could not reach or log in to the bastion, so the target was not asked.
        case failed
        /// No answer within the time bound.
        case noAnswer = "no_answer"
        /// Not checked: a remote forward, a unix-socket target without a
        /// supervisor, or a tunnel that is not running.
        case notChecked = "not_checked"
    }

    /// As in status.json: `L 127.0.0.1:15432:db:5432`, `R 9090`, `D 1080`.
    public var forward: String
    public var result: Result
    /// ssh's line or the probe's finding; nil when reachable or not checked.
    public var message: String?

    public init(forward: String, result: Result, message: String? = nil) {
        self.forward = forward
        self.result = result
        self.message = message
    }

    enum CodingKeys: String, CodingKey { case forward, result, message }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(forward, forKey: .forward)
        try c.encode(result, forKey: .result)
        try c.encode(message, forKey: .message)
    }
}

/// The supervisor's own view of a tunnel, as status.json has it.
public struct SupervisorView: Sendable, Equatable, Codable {
    public var state: TunnelState
    public var since: String
    public var restarts: Int
    public var pid: Int32?

    public init(_ status: TunnelStatus) {
        state = status.state
        since = status.since
        restarts = status.restarts
        pid = status.pid
    }

    enum CodingKeys: String, CodingKey { case state, since, restarts, pid }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(state, forKey: .state)
        try c.encode(since, forKey: .since)
        try c.encode(restarts, forKey: .restarts)
        try c.encode(pid, forKey: .pid)
    }
}

/// One tunnel in `warren check`'s report.
public struct TunnelCheck: Sendable, Equatable, Codable {
    public var name: String
    public var state: CheckedState
    public var kind: CheckKind?
    /// ssh's own line or the probe's finding.
    public var message: String?
    /// What to do; nil when up.
    public var hint: String?
    /// What the supervisor reports (supervisor mode only).
    public var supervisor: SupervisorView?
    public var forwards: [ForwardCheck]
    /// Findings that do not stop the tunnel today but need a human soon (a
    /// certificate about to expire, a local port another program holds): an
    /// otherwise OK tunnel with warnings is WARNING.
    public var warnings: [String] = []
    /// The user certificate's principals and expiry (`certificate_file`), when it has one.
    public var certificate: String?
    /// The key file's fingerprint and age: `SHA256:... (/path/id_ed25519, 12 days old)`.
    public var key: String?
    /// Each forward that listens beyond loopback, with what it opens
    /// (`PublicListener`): said, not a WARNING, since a pod's forwards listen
    /// on 0.0.0.0 by design.
    public var beyondLoopback: [String] = []

    /// The check with its hint naming the tunnel's real values (the failing
    /// host, found in `message`; ports; targets).
    public func withHint(for tunnel: TunnelConfig, defaultUser: String) -> TunnelCheck {
        var check = self
        check.hint = kind?.hint(in: HintContext(tunnel: tunnel, message: message, defaultUser: defaultUser))
        return check
    }

    /// The state's status, except that an `up` tunnel with a warning (its host
    /// key is not checked, its certificate expires soon) is a WARNING.
    public var status: CheckStatus {
        if state == .up && kind == .hostKeyNotChecked { return .warning }
        return state.status == .ok && !warnings.isEmpty ? .warning : state.status
    }

    public init(name: String, state: CheckedState, kind: CheckKind? = nil, message: String? = nil, supervisor: SupervisorView? = nil, forwards: [ForwardCheck] = []) {
        self.name = name
        self.state = state
        self.kind = kind
        self.message = message
        self.hint = kind?.hint
        self.supervisor = supervisor
        self.forwards = forwards
    }

    enum CodingKeys: String, CodingKey { case name, status, state, kind, message, hint, supervisor, forwards, warnings, certificate, key
        case beyondLoopback = "beyond_loopback"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        state = try c.decode(CheckedState.self, forKey: .state)
        kind = try c.decodeIfPresent(CheckKind.self, forKey: .kind)
        message = try c.decodeIfPresent(String.self, forKey: .message)
        hint = try c.decodeIfPresent(String.self, forKey: .hint)
        supervisor = try c.decodeIfPresent(SupervisorView.self, forKey: .supervisor)
        forwards = try c.decode([ForwardCheck].self, forKey: .forwards)
        warnings = try c.decodeIfPresent([String].self, forKey: .warnings) ?? []
        certificate = try c.decodeIfPresent(String.self, forKey: .certificate)
        key = try c.decodeIfPresent(String.self, forKey: .key)
        beyondLoopback = try c.decodeIfPresent([String].self, forKey: .beyondLoopback) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(status, forKey: .status)
        try c.encode(state, forKey: .state)
        try c.encode(kind, forKey: .kind)
        try c.encode(message, forKey: .message)
        try c.encode(hint, forKey: .hint)
        try c.encode(supervisor, forKey: .supervisor)
        try c.encode(forwards, forKey: .forwards)
        try c.encode(warnings, forKey: .warnings)
        try c.encode(certificate, forKey: .certificate)
        try c.encode(key, forKey: .key)
        try c.encode(beyondLoopback, forKey: .beyondLoopback)
    }
}

/// Everything `warren check` found: the JSON of `--json` (schema in
/// docs/check-json.md) and the source of the plugin text.
public struct CheckReport: Sendable, Equatable, Codable {
    public struct Counts: Sendable, Equatable, Codable {
        public var up = 0, degraded = 0, down = 0, unknown = 0
    }

    /// Bumped on incompatible changes.
    public var version = 1
    public var status: CheckStatus
    public var mode: CheckMode
    /// When the check started (RFC 3339, UTC).
    public var checkedAt: String
    public var elapsedSeconds: Double
    public var configFile: String?
    public var stateDir: String?
    /// The running supervisor's pid (supervisor mode only).
    public var supervisorPid: Int32?
    /// Whether a supervisor runs for the state directory; nil when that could
    /// not be looked at. Direct mode checks the path, while nothing keeps it up.
    public var supervisorRunning: Bool?
    public var counts: Counts
    /// Why nothing could be checked (status UNKNOWN), e.g. the config's errors.
    public var error: String?
    public var tunnels: [TunnelCheck]

    public var exitCode: Int32 { status.exitCode }

    /// A report of checked tunnels; the status is the worst of theirs.
    public init(mode: CheckMode, checkedAt: String, elapsedSeconds: Double, configFile: String?, stateDir: String?, supervisorPid: Int32?, tunnels: [TunnelCheck]) {
        self.mode = mode
        self.checkedAt = checkedAt
        self.elapsedSeconds = elapsedSeconds
        self.configFile = configFile
        self.stateDir = stateDir
        self.supervisorPid = supervisorPid
        switch mode {
        case .supervisor: supervisorRunning = true
        case .direct: supervisorRunning = false
        case .none: supervisorRunning = supervisorPid == nil ? nil : true
        }
        self.tunnels = tunnels
        var counts = Counts()
        for tunnel in tunnels {
            switch tunnel.state {
            case .up: counts.up += 1
            case .degraded: counts.degraded += 1
            case .down: counts.down += 1
            case .unknown: counts.unknown += 1
            }
        }
        self.counts = counts
        self.status = CheckStatus.worst(tunnels.map(\.status))
    }

    /// `--require-supervisor` and none runs: every tunnel is down (`no_supervisor`),
    /// CRITICAL, and nothing is asked of the bastions.
    public static func noSupervisor(_ tunnels: [TunnelCheck], checkedAt: String, elapsedSeconds: Double, configFile: String?, stateDir: String?) -> CheckReport {
        var report = CheckReport(mode: .none, checkedAt: checkedAt, elapsedSeconds: elapsedSeconds, configFile: configFile, stateDir: stateDir, supervisorPid: nil, tunnels: tunnels)
        report.supervisorRunning = false
        return report
    }

    /// A report that could check nothing: UNKNOWN, with the reason.
    public static func unknown(_ error: String, checkedAt: String, elapsedSeconds: Double, configFile: String?, stateDir: String?, mode: CheckMode = .none, supervisorPid: Int32? = nil) -> CheckReport {
        var report = CheckReport(mode: mode, checkedAt: checkedAt, elapsedSeconds: elapsedSeconds, configFile: configFile, stateDir: stateDir, supervisorPid: supervisorPid, tunnels: [])
        report.status = .unknown
        report.error = error
        return report
    }

    /// The plugin's first line, without performance data:
    /// `WARREN OK - 3/3 tunnels up`; without a supervisor it says so first
    /// (`WARREN OK - no supervisor; connected directly: 1/1 tunnel up`), so a
    /// cron job never reads a one-shot login as a running warren.
    public var summary: String {
        if let error {
            return "WARREN \(status.rawValue) - \(PluginText.clean(firstLine(of: error)))"
        }
        var how = ""
        if mode == .direct { how = "no supervisor; connected directly: " }
        if mode == .none && supervisorRunning == false { how = "no supervisor: " }
        var parts = ["\(counts.up)/\(tunnels.count) tunnel\(tunnels.count == 1 ? "" : "s") up"]
        if counts.degraded > 0 { parts.append("\(counts.degraded) degraded") }
        if counts.down > 0 { parts.append("\(counts.down) down") }
        if counts.unknown > 0 { parts.append("\(counts.unknown) unknown") }
        let unchecked = tunnels.filter { $0.kind == .hostKeyNotChecked }.count
        if unchecked > 0 { parts.append("\(unchecked) without host key checking") }
        return "WARREN \(status.rawValue) - " + how + parts.joined(separator: ", ")
    }

    /// The whole plugin output: the summary with performance data, then one
    /// line per tunnel that is not OK (name, state, kind, ssh's line, the fix).
    /// `|` never appears outside the performance data: Nagios would cut there.
    public var pluginText: String {
        var lines: [String] = []
        if let error {
            lines.append(summary)
            lines += error.split(separator: "\n").dropFirst().map { PluginText.clean(String($0)) }
        } else {
            lines.append("\(summary) | up=\(counts.up) degraded=\(counts.degraded) down=\(counts.down) unknown=\(counts.unknown)")
            // An up tunnel whose only trouble is a warning is told by its warning lines below.
            for tunnel in tunnels where tunnel.status != .ok && !(tunnel.state == .up && tunnel.kind == nil) {
                var line = "\(tunnel.name): \(tunnel.state.rawValue)"
                if let kind = tunnel.kind { line += " (\(kind.rawValue))" }
                if let message = tunnel.message { line += ": \(message)" }
                if let hint = tunnel.hint { line += " -- fix: \(hint)" }
                lines.append(PluginText.clean(line))
            }
            for tunnel in tunnels {
                for warning in tunnel.warnings { lines.append(PluginText.clean("\(tunnel.name): WARNING: \(warning)")) }
                for exposed in tunnel.beyondLoopback { lines.append(PluginText.clean("\(tunnel.name): NOTE: \(exposed)")) }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func firstLine(of text: String) -> String {
        String(text.split(separator: "\n", omittingEmptySubsequences: true).first ?? "")
    }

    enum CodingKeys: String, CodingKey {
        case version, status, summary, mode, error, counts, tunnels
        case exitCode = "exit_code"
        case checkedAt = "checked_at"
        case elapsedSeconds = "elapsed_seconds"
        case configFile = "config_file"
        case stateDir = "state_dir"
        case supervisorPid = "supervisor_pid"
        case supervisorRunning = "supervisor_running"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        status = try c.decode(CheckStatus.self, forKey: .status)
        mode = try c.decode(CheckMode.self, forKey: .mode)
        checkedAt = try c.decode(String.self, forKey: .checkedAt)
        elapsedSeconds = try c.decode(Double.self, forKey: .elapsedSeconds)
        configFile = try c.decodeIfPresent(String.self, forKey: .configFile)
        stateDir = try c.decodeIfPresent(String.self, forKey: .stateDir)
        supervisorPid = try c.decodeIfPresent(Int32.self, forKey: .supervisorPid)
        supervisorRunning = try c.decodeIfPresent(Bool.self, forKey: .supervisorRunning)
        counts = try c.decode(Counts.self, forKey: .counts)
        error = try c.decodeIfPresent(String.self, forKey: .error)
        tunnels = try c.decode([TunnelCheck].self, forKey: .tunnels)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(status, forKey: .status)
        try c.encode(exitCode, forKey: .exitCode)
        try c.encode(summary, forKey: .summary)
        try c.encode(mode, forKey: .mode)
        try c.encode(checkedAt, forKey: .checkedAt)
        try c.encode(elapsedSeconds, forKey: .elapsedSeconds)
        try c.encode(configFile, forKey: .configFile)
        try c.encode(stateDir, forKey: .stateDir)
        try c.encode(supervisorPid, forKey: .supervisorPid)
        try c.encode(supervisorRunning, forKey: .supervisorRunning)
        try c.encode(counts, forKey: .counts)
        try c.encode(error, forKey: .error)
        try c.encode(tunnels, forKey: .tunnels)
    }
}

/// Text for monitoring systems, which read line by line.
enum PluginText {
    /// One line, no `|` (Nagios treats what follows as performance data),
    /// nothing a terminal acts on (`TerminalText.escape`; a newline becomes `\u{a}`).
    static func clean(_ text: String) -> String {
        TerminalText.escape(text.replacingOccurrences(of: "|", with: "/"))
    }
}
