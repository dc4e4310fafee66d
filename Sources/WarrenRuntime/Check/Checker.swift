import Foundation
import WarrenCore

/// `warren check`: one look at every selected tunnel, all in parallel, within a
/// time bound. With a supervisor running for the state directory, its status
/// plus a live probe through each local forward; without one, a one-shot ssh
/// per forward that asks the bastion to reach the target.
public struct Checker: Sendable {
    public var config: WarrenConfig
    /// The tunnels to check (the caller resolves names; default: the enabled ones).
    public var tunnels: [TunnelConfig]
    /// `--templates`, for the files direct mode renders.
    public var templatesDirectory: String?
    /// The whole check's budget, seconds.
    public var timeout: Double
    /// ssh connections in flight at once in direct mode (sshd's MaxStartups).
    public var maxParallel: Int
    /// `--require-supervisor`: with no supervisor, every tunnel is down
    /// (CRITICAL) instead of being checked directly.
    public var requireSupervisor: Bool

    public init(config: WarrenConfig, tunnels: [TunnelConfig], templatesDirectory: String?, timeout: Double, maxParallel: Int = 8, requireSupervisor: Bool = false) {
        self.requireSupervisor = requireSupervisor
        self.config = config
        self.tunnels = tunnels
        self.templatesDirectory = templatesDirectory
        self.timeout = timeout
        self.maxParallel = max(1, maxParallel)
    }

    public func run() async -> CheckReport {
        let started = ContinuousClock.now
        let checkedAt = Date().formatted(.iso8601)
        let deadline = started + .milliseconds(Int64(timeout * 1000))
        func elapsed() -> Double { (ContinuousClock.now - started) / .seconds(1) }

        let presence = SupervisorPresence.look(stateDir: config.stateDir)
        if let problem = presence.problem {
            return .unknown(problem, checkedAt: checkedAt, elapsedSeconds: elapsed(), configFile: config.file, stateDir: config.stateDir)
        }
        if let pid = presence.runningPid {
            guard let report = await settledReport(pid: pid, deadline: deadline) else {
                return .unknown(
                    "warren (pid \(pid)) supervises \(config.stateDir) but its status.json is missing or unreadable",
                    checkedAt: checkedAt, elapsedSeconds: elapsed(), configFile: config.file, stateDir: config.stateDir,
                    mode: .supervisor, supervisorPid: pid)
            }
            let checks = await completed(supervisorChecks(report, deadline: deadline), mode: .supervisor, supervisorPid: pid)
            return CheckReport(mode: .supervisor, checkedAt: checkedAt, elapsedSeconds: elapsed(), configFile: config.file, stateDir: config.stateDir, supervisorPid: pid, tunnels: checks)
        }
        if requireSupervisor {
            let down = tunnels.map { tunnel in
                TunnelCheck(name: tunnel.name, state: .down, kind: .noSupervisor, message: "no warren supervises \(config.stateDir) (--require-supervisor)",
                            forwards: tunnel.forwards.map { ForwardCheck(forward: CheckAssessment.describe($0), result: .notChecked) })
            }
            return .noSupervisor(await completed(down, mode: .none), checkedAt: checkedAt, elapsedSeconds: elapsed(), configFile: config.file, stateDir: config.stateDir)
        }
        let files: TunnelFiles
        do {
            let templates = try Locations.templatesDirectory(explicit: templatesDirectory, fromConfig: config.templatesDir)
            files = try TunnelFiles(templatesDirectory: templates, stateDir: config.stateDir, configFile: config.file, sshBinary: config.sshBinary)
            for tunnel in tunnels { try await files.write(tunnel, sshBinary: config.sshBinary) }
        } catch {
            return .unknown("cannot write the tunnels' ssh files to ask the bastions: \(error)", checkedAt: checkedAt, elapsedSeconds: elapsed(), configFile: config.file, stateDir: config.stateDir, mode: .direct)
        }
        // Half a second is kept for stopping the ssh children that did not answer.
        let checks = await completed(directChecks(files: files, deadline: deadline - .milliseconds(500)), mode: .direct)
        return CheckReport(mode: .direct, checkedAt: checkedAt, elapsedSeconds: elapsed(), configFile: config.file, stateDir: config.stateDir, supervisorPid: nil, tunnels: checks)
    }

    // MARK: - Supervisor mode

    /// How long a live probe keeps a connection open to call the target reachable.
    static let probeWait = 2.0

    /// The running supervisor's status, once no checked tunnel is still starting
    /// or connecting (a check right after `warren run` starts waits for the
    /// first attempts), or when time is up for waiting. Nil when the supervisor
    /// wrote no status at all.
    func settledReport(pid: Int32, deadline: ContinuousClock.Instant) async -> StatusReport? {
        let names = Set(tunnels.map(\.name))
        let waitUntil = deadline - .milliseconds(Int64((Self.probeWait + 0.5) * 1000))
        var latest: StatusReport?
        while true {
            let presence = SupervisorPresence.look(stateDir: config.stateDir)
            if let report = presence.report, report.supervisorPid == pid {
                latest = report
                let settling = report.tunnels.contains { names.contains($0.name) && ($0.state == .starting || $0.state == .connecting) }
                if !settling { return report }
            }
            if ContinuousClock.now >= waitUntil { return latest }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    func supervisorChecks(_ report: StatusReport, deadline: ContinuousClock.Instant) async -> [TunnelCheck] {
        let statuses = Dictionary(report.tunnels.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        return await withTaskGroup(of: (Int, TunnelCheck).self) { group in
            for (index, tunnel) in tunnels.enumerated() {
                let status = statuses[tunnel.name]
                group.addTask {
                    var probes: [Forward: LiveProbe] = [:]
                    if let status, status.state.hasChild {
                        probes = await Self.probeLive(CheckAssessment.probeable(tunnel), connectTimeout: tunnel.connectTimeout, deadline: deadline)
                    }
                    return (index, CheckAssessment.assess(tunnel, status: status, probes: probes))
                }
            }
            var results: [(Int, TunnelCheck)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    static func probeLive(_ forwards: [Forward], connectTimeout: Int, deadline: ContinuousClock.Instant) async -> [Forward: LiveProbe] {
        await withTaskGroup(of: (Forward, LiveProbe).self) { group in
            for forward in forwards {
                group.addTask {
                    let left = (deadline - ContinuousClock.now) / .seconds(1) - 0.2
                    guard left > 0.2 else { return (forward, .noAnswer) }
                    let wait = min(probeWait, Double(connectTimeout), left / 2)
                    switch await TargetProbe.probe(forward.listen, wait: wait) {
                    case .reachable: return (forward, .reachable)
                    case .unreachable(let message): return (forward, .unreachable(message))
                    case .notListening(let message): return (forward, .notListening(message))
                    }
                }
            }
            var results: [Forward: LiveProbe] = [:]
            for await (forward, result) in group { results[forward] = result }
            return results
        }
    }

    // MARK: - Direct mode

    /// One question to a bastion: a forward's target, or (forward nil) a session.
    struct Question: Sendable {
        var tunnel: Int
        var forward: Forward?
    }

    func directChecks(files: TunnelFiles, deadline: ContinuousClock.Instant) async -> [TunnelCheck] {
        var questions: [Question] = []
        for (index, tunnel) in tunnels.enumerated() {
            let askable = CheckAssessment.askable(tunnel)
            if askable.isEmpty {
                questions.append(Question(tunnel: index, forward: nil))
            } else {
                questions += askable.map { Question(tunnel: index, forward: $0) }
            }
        }
        let probes = tunnels.map { BastionProbe(tunnel: $0, sshConfig: files.sshConfigPath(for: $0), sshBinary: config.sshBinary) }
        var answers = [[Forward: BastionAnswer]](repeating: [:], count: tunnels.count)
        var sessions = [BastionAnswer?](repeating: nil, count: tunnels.count)
        func record(_ question: Question, _ answer: BastionAnswer) {
            if let forward = question.forward { answers[question.tunnel][forward] = answer } else { sessions[question.tunnel] = answer }
        }
        // One login first for the questions that log in the same way (see
        // LoginGate): a key the bastion refuses costs one failed login, not one
        // per question, and that one waits for room in the penalty budget.
        let keys = tunnels.map(LoginGate.key(for:))
        var firsts: [Question] = []
        var rest: [String: [Question]] = [:]
        for question in questions {
            let key = keys[question.tunnel]
            if rest[key] == nil { firsts.append(question); rest[key] = [] } else { rest[key]!.append(question) }
        }
        let budget = PenaltyBudget(stateDir: config.stateDir)
        for (question, answer) in await ask(firsts, probes, deadline: deadline, budget: budget) {
            record(question, answer)
            let key = keys[question.tunnel]
            if case .failed(let kind, let message) = answer, kind.isLoginRefusal {
                for other in rest[key] ?? [] {
                    record(other, .failed(kind, "not tried: \(tunnels[question.tunnel].name)'s login, the same as this one, was refused (\(message))"))
                }
                rest[key] = []
            }
        }
        for (question, answer) in await ask(rest.values.flatMap { $0 }, probes, deadline: deadline, budget: nil) {
            record(question, answer)
        }
        return tunnels.enumerated().map { index, tunnel in
            CheckAssessment.assess(tunnel, answers: answers[index], session: sessions[index])
        }
    }

    /// Asks the bastion every question, `maxParallel` at a time. With a
    /// budget, each is a login not yet known to work: it waits for room first.
    private func ask(_ questions: [Question], _ probes: [BastionProbe], deadline: ContinuousClock.Instant, budget: PenaltyBudget?) async -> [(Question, BastionAnswer)] {
        var answered: [(Question, BastionAnswer)] = []
        await withTaskGroup(of: (Question, BastionAnswer).self) { group in
            var pending = questions[...]
            func addNext() {
                guard let question = pending.popFirst() else { return }
                let probe = probes[question.tunnel]
                group.addTask {
                    let hosts = StartThrottle.bastions(of: probe.tunnel)
                    await budget?.reserveFailedLogin(on: hosts)
                    let answer = await probe.ask(about: question.forward?.target, until: deadline)
                    switch answer {
                    case .failed(let kind, _) where kind.isLoginRefusal: break
                    case .reachable, .targetFailed: await budget?.refundFailedLogin(on: hosts)
                    default: await budget?.refundFailedLogin(on: hosts, keeping: PenaltyBudget.abandonedConnection)
                    }
                    return (question, answer)
                }
            }
            for _ in 0..<maxParallel { addNext() }
            for await result in group {
                answered.append(result)
                addNext()
            }
        }
        return answered
    }
}
