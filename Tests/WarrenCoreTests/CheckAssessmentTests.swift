import Foundation
import Testing
import WarrenCore

/// The verdicts of `warren check` and the plugin text, without processes.
struct CheckAssessmentTests {
    static let tunnel = TunnelConfig(
        name: "db",
        endpoint: SSHEndpoint(host: "bastion.example.com", identityFile: "/k"),
        localForwards: [Forward(kind: .local, listen: .tcp(host: "127.0.0.1", port: 15432), target: .tcp(host: "db", port: 5432))],
        remoteForwards: [Forward(kind: .remote, listen: .tcp(host: nil, port: 9090), target: nil)])
    static var local: Forward { tunnel.localForwards[0] }

    static func status(_ state: TunnelState, error: TunnelError? = nil) -> TunnelStatus {
        TunnelStatus(name: "db", state: state, since: "2026-01-01T00:00:00Z", pid: state.hasChild ? 42 : nil, restarts: 3,
                     forwards: TunnelStatus.describe(tunnel), lastError: error, nextRetry: state == .backoff ? "2026-01-01T00:00:05Z" : nil)
    }

    struct SupervisorCase: Sendable, CustomStringConvertible {
        var description: String
        var status: TunnelStatus?
        var probe: LiveProbe?
        var state: CheckedState
        var kind: CheckKind?
    }

    static let supervisorCases: [SupervisorCase] = [
        .init(description: "up, target answers", status: status(.up), probe: .reachable, state: .up, kind: nil),
        .init(description: "up, target refuses", status: status(.up), probe: .unreachable("closed"), state: .degraded, kind: .failure(.targetUnreachable)),
        .init(description: "degraded, target answers again", status: status(.degraded, error: TunnelError(kind: .targetUnreachable, message: "x")), probe: .reachable, state: .up, kind: nil),
        .init(description: "degraded, forwarding forbidden", status: status(.degraded, error: TunnelError(kind: .forwardingForbidden, message: "x")), probe: .unreachable("closed"), state: .degraded, kind: .failure(.forwardingForbidden)),
        .init(description: "up, port not listening", status: status(.up), probe: .notListening("nothing"), state: .down, kind: .notListening),
        .init(description: "up, probe out of time", status: status(.up), probe: .noAnswer, state: .unknown, kind: .noAnswer),
        .init(description: "backoff", status: status(.backoff, error: TunnelError(kind: .connectionRefused, message: "ssh: connect to host b port 22: Connection refused")), probe: nil, state: .down, kind: .failure(.connectionRefused)),
        .init(description: "failed", status: status(.failed, error: TunnelError(kind: .authFailed, message: "u@b: Permission denied (publickey).")), probe: nil, state: .down, kind: .failure(.authFailed)),
        .init(description: "connecting, first attempt", status: status(.connecting), probe: nil, state: .down, kind: .notReady),
        .init(description: "connecting after a failure", status: status(.connecting, error: TunnelError(kind: .connectTimeout, message: "timed out")), probe: nil, state: .down, kind: .failure(.connectTimeout)),
        .init(description: "stopped", status: status(.stopped), probe: nil, state: .down, kind: .notSupervised),
        .init(description: "not reported", status: nil, probe: nil, state: .down, kind: .notSupervised),
    ]

    @Test(arguments: supervisorCases)
    func supervisorMode(_ c: SupervisorCase) {
        let probes = c.probe.map { [Self.local: $0] } ?? [:]
        let check = CheckAssessment.assess(Self.tunnel, status: c.status, probes: probes)
        #expect(check.state == c.state)
        #expect(check.kind == c.kind)
        #expect(check.hint == c.kind?.hint)
        #expect(check.forwards.map(\.forward) == ["L 127.0.0.1:15432:db:5432", "R 9090"])
        #expect(check.forwards[1].result == .notChecked, "remote forwards are never probed")
        if c.state != .up { #expect(check.message != nil) }
    }

    @Test func backoffSaysWhenItRetries() {
        let check = CheckAssessment.assess(Self.tunnel, status: Self.status(.backoff, error: TunnelError(kind: .connectionRefused, message: "refused")), probes: [:])
        #expect(check.message == "refused (next retry 2026-01-01T00:00:05Z)")
    }

    @Test(arguments: [
        (BastionAnswer.reachable, CheckedState.up, CheckKind?.none, ForwardCheck.Result.reachable),
        (.targetFailed(.targetUnreachable, "channel 0: open failed"), .degraded, .failure(.targetUnreachable), .unreachable),
        (.targetFailed(.forwardingForbidden, "prohibited"), .degraded, .failure(.forwardingForbidden), .unreachable),
        (.failed(.authFailed, "denied"), .down, .failure(.authFailed), .failed),
        (.noAnswer("nothing in 2 s"), .unknown, .noAnswer, .noAnswer),
    ])
    func directMode(_ answer: BastionAnswer, _ state: CheckedState, _ kind: CheckKind?, _ result: ForwardCheck.Result) {
        let check = CheckAssessment.assess(Self.tunnel, answers: [Self.local: answer], session: nil)
        #expect(check.state == state)
        #expect(check.kind == kind)
        #expect(check.forwards.map(\.result) == [result, .notChecked])
        #expect(check.supervisor == nil)
    }

    @Test func directModeWorstAnswerWins() {
        let second = Forward(kind: .local, listen: .tcp(host: "127.0.0.1", port: 15433), target: .tcp(host: "db2", port: 5432))
        var tunnel = Self.tunnel
        tunnel.localForwards.append(second)
        let degradedAndDown = CheckAssessment.assess(tunnel, answers: [Self.local: .targetFailed(.targetUnreachable, "t"), second: .failed(.connectTimeout, "c")], session: nil)
        #expect(degradedAndDown.state == .down && degradedAndDown.kind == .failure(.connectTimeout))
        let degradedAndUnknown = CheckAssessment.assess(tunnel, answers: [Self.local: .targetFailed(.targetUnreachable, "t"), second: .noAnswer("n")], session: nil)
        #expect(degradedAndUnknown.state == .unknown)
    }

    @Test func onlyTCPTargetsAreAskedAbout() {
        let socket = Forward(kind: .local, listen: .tcp(host: "127.0.0.1", port: 15434), target: .unix(path: "/run/postgresql/.s.PGSQL.5432"))
        var tunnel = Self.tunnel
        tunnel.localForwards = [socket]
        tunnel.dynamicForwards = [Forward(kind: .dynamic, listen: .tcp(host: "127.0.0.1", port: 1080), target: nil)]
        #expect(CheckAssessment.askable(tunnel).isEmpty)
        #expect(CheckAssessment.probeable(tunnel).count == 2)
        let check = CheckAssessment.assess(tunnel, answers: [:], session: .reachable)
        #expect(check.state == .up)
        #expect(check.forwards.allSatisfy { $0.result == .notChecked })
    }

    // MARK: - The report

    static func report(_ states: [CheckedState], mode: CheckMode = .supervisor) -> CheckReport {
        let tunnels = states.enumerated().map { index, state in
            TunnelCheck(name: "t\(index)", state: state, kind: state == .up ? nil : .failure(.targetUnreachable), message: state == .up ? nil : "channel 2: open failed | weird")
        }
        return CheckReport(mode: mode, checkedAt: "2026-01-01T00:00:00Z", elapsedSeconds: 0.5, configFile: "/etc/warren/warren.toml", stateDir: "/var/lib/warren", supervisorPid: mode == .supervisor ? 812 : nil, tunnels: tunnels)
    }

    @Test(arguments: [
        ([CheckedState.up, .up, .up], CheckStatus.ok, "WARREN OK - 3/3 tunnels up | up=3 degraded=0 down=0 unknown=0"),
        ([.up], .ok, "WARREN OK - 1/1 tunnel up | up=1 degraded=0 down=0 unknown=0"),
        ([.up, .degraded], .warning, "WARREN WARNING - 1/2 tunnels up, 1 degraded | up=1 degraded=1 down=0 unknown=0"),
        ([.degraded, .unknown], .unknown, "WARREN UNKNOWN - 0/2 tunnels up, 1 degraded, 1 unknown | up=0 degraded=1 down=0 unknown=1"),
        ([.unknown, .down, .degraded], .critical, "WARREN CRITICAL - 0/3 tunnels up, 1 degraded, 1 down, 1 unknown | up=0 degraded=1 down=1 unknown=1"),
    ])
    func pluginFirstLineAndExitCode(_ states: [CheckedState], _ status: CheckStatus, _ firstLine: String) {
        let report = Self.report(states)
        #expect(report.status == status)
        #expect(report.exitCode == [CheckStatus.ok: 0, .warning: 1, .critical: 2, .unknown: 3][status])
        let lines = report.pluginText.split(separator: "\n").map(String.init)
        #expect(lines.first == firstLine)
        #expect(lines.count == 1 + states.filter { $0 != .up }.count)
    }

    @Test func detailLinesNameKindAndFixAndNeverCarryAPipe() {
        let text = Self.report([.up, .degraded]).pluginText
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[1] == "t1: degraded (target_unreachable): channel 2: open failed / weird -- fix: \(FailureKind.targetUnreachable.hint)")
        #expect(lines.dropFirst().allSatisfy { !$0.contains("|") }, "Nagios reads text after | as performance data")
    }

    @Test func unknownReportCarriesTheReasonLineByLine() {
        let report = CheckReport.unknown("the config cannot be used:\n/x.toml: tunnels.db.port: must be 1-65535\n/x.toml: tunnels.db.host: is required", checkedAt: "t", elapsedSeconds: 0, configFile: "/x.toml", stateDir: nil)
        #expect(report.exitCode == 3)
        #expect(report.pluginText == """
            WARREN UNKNOWN - the config cannot be used:
            /x.toml: tunnels.db.port: must be 1-65535
            /x.toml: tunnels.db.host: is required

            """)
    }

    @Test func jsonRoundTripKeepsEveryField() throws {
        var report = Self.report([.up, .degraded])
        report.tunnels[1].supervisor = SupervisorView(Self.status(.degraded))
        let encoder = JSONEncoder()
        let data = try encoder.encode(report)
        let decoded = try JSONDecoder().decode(CheckReport.self, from: data)
        #expect(decoded == report)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["exit_code"] as? Int == 1)
        #expect(object["summary"] as? String == "WARREN WARNING - 1/2 tunnels up, 1 degraded")
        #expect(object["supervisor_pid"] as? Int == 812)
        #expect(object["supervisor_running"] as? Bool == true)
        let direct = try #require(try JSONSerialization.jsonObject(with: encoder.encode(Self.report([.up], mode: .direct))) as? [String: Any])
        #expect(direct["supervisor_pid"] is NSNull, "absent values are null, not missing")
        #expect(direct["supervisor_running"] as? Bool == false)
        #expect(direct["mode"] as? String == "direct")
    }

    /// A one-shot login is not a running warren: the first line says which it was.
    @Test func withoutASupervisorTheFirstLineSaysSo() {
        let direct = Self.report([.up], mode: .direct)
        #expect(direct.status == .ok, "the plugin status is the tunnels' as before")
        #expect(direct.pluginText == "WARREN OK - no supervisor; connected directly: 1/1 tunnel up | up=1 degraded=0 down=0 unknown=0\n")
        #expect(Self.report([.up, .degraded], mode: .direct).summary == "WARREN WARNING - no supervisor; connected directly: 1/2 tunnels up, 1 degraded")

        let required = CheckReport.noSupervisor(
            [TunnelCheck(name: "db", state: .down, kind: .noSupervisor, message: "no warren supervises /var/lib/warren (--require-supervisor)")],
            checkedAt: "t", elapsedSeconds: 0, configFile: "/etc/warren/warren.toml", stateDir: "/var/lib/warren")
        #expect(required.status == .critical && required.exitCode == 2)
        #expect(required.mode == .none && required.supervisorRunning == false)
        let lines = required.pluginText.split(separator: "\n").map(String.init)
        #expect(lines.first == "WARREN CRITICAL - no supervisor: 0/1 tunnel up, 1 down | up=0 degraded=0 down=1 unknown=0")
        #expect(lines.last == "db: down (no_supervisor): no warren supervises /var/lib/warren (--require-supervisor) -- fix: \(CheckKind.noSupervisor.hint)")
        #expect(CheckReport.unknown("x", checkedAt: "t", elapsedSeconds: 0, configFile: nil, stateDir: nil).supervisorRunning == nil)
    }

    @Test func everyKindHasAHintAndARoundTrippingName() {
        for kind in FailureKind.allCases.map(CheckKind.failure) + CheckKind.checkOnly {
            #expect(CheckKind(rawValue: kind.rawValue) == kind)
            #expect(!kind.hint.isEmpty)
        }
    }
}
