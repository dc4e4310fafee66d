import Foundation
import WarrenCore

/// Steps 3-6: reaching the first host and checking every host's key.
extension DoctorSession {
    var firstHopName: String {
        tunnel.jumps.isEmpty ? "the bastion" : "jump hop 1 (ssh dials it first)"
    }

    // MARK: - 3. name resolves

    func checkName() async -> StepOutcome {
        let endpoint = firstHop.endpoint
        let result = await NetworkCheck.offPool { NetworkCheck.resolve(host: endpoint.host, port: endpoint.port) }
        switch result {
        case .success(let resolved):
            found.addresses = resolved
            let list = resolved.map(\.text).joined(separator: ", ")
            let what = resolved.count == 1 && resolved[0].text == endpoint.host ? "\(endpoint.host) is an address" : "\(endpoint.host) -> \(list)"
            return .passed(evidence: ["\(firstHopName): \(what)"])
        case .failure(let failure):
            return .failed(
                evidence: ["\(firstHopName): \(endpoint.host): \(failure.words)"],
                fix: hint(.dnsFailure, at: firstHop.alias),
                kind: .dnsFailure)
        }
    }

    // MARK: - 4-6: one login run

    /// The one ssh run of steps 4-7: it connects, reads the banner, checks
    /// every host's key and logs in. Separate connections that end before a
    /// login each cost this machine's address a second of sshd's
    /// PerSourcePenalties (OpenSSH 9.8+); a login that works costs nothing.
    func loginRun() async -> DoctorFindings.Login {
        if let login = found.login { return login }
        let login: DoctorFindings.Login
        if let problem = await writeFiles() {
            login = DoctorFindings.Login(result: .failed(ExitDiagnosis(kind: problem.kind, message: problem.message)), facts: LoginFacts(), banner: [], running: nil, filesProblem: problem)
        } else {
            do {
                let launch = try self.launch(["-v", "-F", sshConfigPath, "-o", "ClearAllForwardings=yes", "-N", tunnel.alias])
                let hosts = StartThrottle.bastions(of: tunnel)
                let budget = PenaltyBudget(stateDir: config.stateDir)
                // A login that may fail waits for room in the address's penalty budget.
                await budget.reserveFailedLogin(on: hosts)
                let (result, running) = await SSHCheck(launch: launch, hops: tunnel.jumps.count, goal: .authenticated, timeout: loginTimeout).start()
                switch result {
                case .reached: await budget.refundFailedLogin(on: hosts)
                case .failed(let diagnosis) where diagnosis.kind.isLoginRefusal: break
                default: await budget.refundFailedLogin(on: hosts, keeping: PenaltyBudget.abandonedConnection)
                }
                // What the server says before login is data: shown, escaped, never judged.
                let banner = running.banner.withLock { $0 }.map { "the server's banner: \(TerminalText.escape($0))" }
                login = DoctorFindings.Login(result: result, facts: running.watch.facts, banner: banner, running: running, filesProblem: nil)
            } catch {
                login = DoctorFindings.Login(result: .failed(ExitDiagnosis(kind: .unknown, message: "cannot set up ssh's log pipe: \(error)")), facts: LoginFacts(), banner: [], running: nil, filesProblem: nil)
            }
        }
        found.login = login
        return login
    }

    /// The generated files, written once before the login run; the problem, if any.
    private func writeFiles() async -> HostKeyResolutionError? {
        guard !found.filesWritten else { return nil }
        do {
            try await files.write(found.resolvedTunnel ?? tunnel, sshBinary: config.sshBinary)
            found.filesWritten = true
            return nil
        } catch let error as HostKeyResolutionError {
            return error
        } catch {
            return HostKeyResolutionError(kind: .unknown, message: "cannot write the generated files: \(error) (make \(config.stateDir) writable by this user, or pass --state-dir)")
        }
    }

    /// A failure of the login run that ends at this step.
    private func stepFailure(_ diagnosis: ExitDiagnosis, _ login: DoctorFindings.Login, context: [String] = []) -> StepOutcome {
        var evidence = context + login.facts.preBanner.map { "the server sent before any banner: \"\(TerminalText.escape($0))\"" }
        evidence += login.banner
        return failure(diagnosis, context: evidence)
    }

    // MARK: - 4. TCP

    func checkTCP() async -> StepOutcome {
        let login = await loginRun()
        let endpoint = firstHop.endpoint
        if let problem = login.filesProblem {
            // A fingerprint pin was checked against the keys the host offered: it answered.
            if problem.isHostKeyVerdict { return .passed(evidence: ["\(firstHopName): answered the fingerprint pin's key scan"]) }
            return .failed(evidence: [problem.message], fix: hint(problem.kind), kind: problem.kind)
        }
        if login.facts.connected {
            let to = login.facts.dialled.map { " (\(TerminalText.escape($0)))" } ?? ""
            return .passed(evidence: ["\(firstHopName): ssh connected to \(endpoint.host) port \(endpoint.port)\(to); steps 4-7 are that one connection"])
        }
        switch login.result {
        case .failed(let diagnosis):
            return stepFailure(diagnosis, login, context: ["\(firstHopName): ssh could not connect to \(endpoint.host) port \(endpoint.port)"])
        case .timedOut(let seconds, let lines):
            return .failed(
                evidence: ["\(firstHopName): no TCP connection to \(endpoint.host) port \(endpoint.port) within \(Int(seconds)) s (connect_timeout = \(tunnel.connectTimeout) s)"] + lines.suffix(2).map { "ssh: \(TerminalText.escape($0))" },
                fix: hint(.connectTimeout, at: firstHop.alias), kind: .connectTimeout)
        case .reached:
            return .passed(evidence: ["\(firstHopName): connected"])
        }
    }

    // MARK: - 5. banner

    func checkBanner() async -> StepOutcome {
        let login = await loginRun()
        let endpoint = firstHop.endpoint
        if login.filesProblem?.isHostKeyVerdict == true { return .passed(evidence: ["\(firstHopName): sent its banner and keys to the fingerprint pin's key scan"]) }
        if let software = login.facts.serverSoftware {
            var evidence = ["\(firstHopName) is \(TerminalText.escape(software)) (its SSH banner)"]
            if let notes = login.facts.serverNotes { evidence.append(notes) }
            return .passed(evidence: evidence)
        }
        switch login.result {
        case .failed(let diagnosis) where diagnosis.kind == .addressBlocked:
            return stepFailure(diagnosis, login, context: ["\(endpoint.host) port \(endpoint.port) accepted the TCP connection and closed it before its SSH banner"])
        case .failed(let diagnosis):
            return stepFailure(diagnosis, login, context: ["no SSH banner from \(endpoint.host) port \(endpoint.port)"])
        case .timedOut, .reached:
            return .failed(
                evidence: ["connected, but \(endpoint.host) port \(endpoint.port) sent no SSH banner within \(tunnel.connectTimeout) s (ssh: \"Connection timed out during banner exchange\")"],
                fix: "sshd on \(endpoint.host) is hung or overloaded (MaxStartups), or a firewall lets the connect through and drops the rest: check sshd there, and that `port` is its SSH port",
                kind: .connectTimeout)
        }
    }

    // MARK: - 6. host keys

    func checkHostKeys() async -> StepOutcome {
        let login = await loginRun()
        var evidence: [String] = []
        for (alias, _, endpoint) in tunnel.endpointsInOrder where endpoint.hostKeyPolicy == .insecureNoCheck {
            evidence.append("\(alias) (\(endpoint.host) port \(endpoint.port)): not checked: host_key_policy = \"insecure-no-check\"")
        }
        if let problem = login.filesProblem, problem.isHostKeyVerdict {
            return .failed(evidence: evidence + [problem.message], fix: hint(problem.kind), kind: problem.kind)
        }
        let offered = login.facts.offeredKeys.map { "offered now: \(TerminalText.escape($0))" }
        if case .failed(let diagnosis) = login.result, diagnosis.kind == .hostKeyUnknown || diagnosis.kind == .hostKeyChanged {
            let pinned = tunnel.endpointsInOrder.filter { !$0.endpoint.hostKeys.isEmpty }
                .map { "pinned (\($0.keyPath).host_key): \($0.endpoint.hostKeys.map(HostKeyCheck.describe).joined(separator: ", "))" }
            return stepFailure(diagnosis, login, context: evidence + pinned + offered)
        }
        if login.facts.matchedKeys.isEmpty, !login.result.isReached {
            // ssh ended before any key was checked: the step before says why.
            if case .failed(let diagnosis) = login.result, login.facts.offeredKeys.isEmpty {
                return stepFailure(diagnosis, login, context: evidence + ["ssh ended before it was offered a host key"])
            }
        }
        evidence += login.facts.matchedKeys.map { TerminalText.escape($0) } + login.facts.offeredKeys.map { "offered: \(TerminalText.escape($0))" }
        return .passed(evidence: evidence)
    }
}

extension HostKeyResolutionError {
    /// The host answered, and its key is not the pinned one (or none is pinned).
    var isHostKeyVerdict: Bool { kind == .hostKeyChanged || kind == .hostKeyUnknown }
}
