import Foundation
import WarrenCore

/// Steps 7, 8 and 10: real ssh runs with the generated config, judged by the
/// StderrClassifier.
extension DoctorSession {
    var sshConfigPath: String { files.sshConfigPath(for: tunnel) }
    /// Long enough for every hop's connect and login.
    var loginTimeout: Double { Double(tunnel.connectTimeout * (tunnel.jumps.count + 1) + 15) }

    /// ssh's log goes to a private pipe, apart from what the server sends.
    /// Without the pipe nothing is judged: every stderr line would then count
    /// as ssh's, the server's banner included.
    func launch(_ arguments: [String]) throws -> SSHLaunch {
        try SSHLaunch(
            executable: tools.ssh, arguments: arguments,
            environment: SSHLaunch.environment(for: tunnel, askpassPath: files.askpassPath(for: tunnel))
        ).loggingApart()
    }

    /// A step's failure when ssh's log pipe cannot be made.
    static func noLogPipe(_ error: any Error) -> StepOutcome {
        .failed(evidence: ["cannot set up ssh's log pipe: \(error)"], fix: "make /tmp writable by this user", kind: .unknown)
    }

    /// A step's failure from how an ssh run ended.
    func failure(_ diagnosis: ExitDiagnosis, context: [String] = [], fix: String? = nil) -> StepOutcome {
        .failed(evidence: context + ["ssh: \(diagnosis.message)"], fix: fix ?? hint(diagnosis.kind, message: diagnosis.message), kind: diagnosis.kind)
    }

    /// The kind's hint with this tunnel's values. `message` (ssh's line) or `at`
    /// (a Host alias) names the failing host; `target` and `localPort` the forward concerned.
    func hint(_ kind: FailureKind, message: String? = nil, at alias: String? = nil, target: Forward.Endpoint? = nil, localPort: Int? = nil) -> String {
        if kind == .unknown {
            // The generic hint says to run the doctor, which is running.
            return "ssh failed in a way warren does not recognise: read ssh's message above, and run the command below by hand (it has -v)"
        }
        var context = HintContext(tunnel: found.resolvedTunnel ?? tunnel, message: message ?? alias, defaultUser: ProcessInfo.processInfo.userName)
        if case .tcp(let host?, let port)? = target { context.targets = ["\(host) \(port)"] }
        if let localPort { context.localPorts = [localPort] }
        return kind.hint(in: context)
    }

    /// What ssh offers to log in: `the key K`, `the agent at S`, `certificate C`, `a password`.
    static func credentials(_ endpoint: SSHEndpoint) -> String {
        var parts: [String] = []
        if !endpoint.identityFile.isEmpty { parts.append(endpoint.identityFile) }
        if let agent = endpoint.login.identityAgent { parts.append("the agent (\(agent))") }
        if let certificate = endpoint.login.certificateFile { parts.append("certificate \(certificate)") }
        if endpoint.login.passwordFile != nil { parts.append("a password") }
        return parts.joined(separator: ", ")
    }

    // MARK: - 7. authentication

    func checkAuthentication() async -> StepOutcome {
        let login = await loginRun()
        let user = tunnel.endpoint.user ?? ProcessInfo.processInfo.userName
        let outcome = await authenticationOutcome(login.result, login.running, banner: login.banner, user: user)
        return outcome
    }

    private func authenticationOutcome(_ result: SSHCheck.Result, _ running: SSHCheck.Running?, banner: [String], user: String) async -> StepOutcome {
        let bastion = tunnel.endpoint
        switch result {
        case .reached(let seconds):
            _ = await running?.finish()
            var evidence = ["logged in as \(user)@\(bastion.host) with \(Self.credentials(bastion)) in \(String(format: "%.2f", seconds)) s"]
            if !tunnel.jumps.isEmpty { evidence.append("through \(tunnel.jumps.count) jump hop\(tunnel.jumps.count == 1 ? "" : "s"), each with its own login") }
            return .passed(evidence: evidence + banner)
        case .failed(let diagnosis):
            var context: [String] = []
            if diagnosis.kind == .authFailed {
                context.append("\(bastion.host) refused the key \(bastion.identityFile) for user \(user)")
                if let line = try? String(contentsOfFile: bastion.identityFile + ".pub", encoding: .utf8),
                    case .success(let key) = PublicKey.parse(line), let fingerprint = key.key.fingerprint
                {
                    context.append("the key's fingerprint is \(fingerprint): on the bastion, `ssh-keygen -lf ~\(user)/.ssh/authorized_keys` must list it")
                }
            }
            return failure(diagnosis, context: context + banner)
        case .timedOut(let seconds, let lines):
            return .failed(
                evidence: ["ssh did not log in within \(Int(seconds)) s"] + lines.suffix(3).map { "ssh: \($0)" },
                fix: hint(.connectTimeout), kind: .connectTimeout)
        }
    }

    // MARK: - 8. targets

    func checkTargets() async -> StepOutcome {
        var evidence: [String] = []
        var targets: [Forward.Endpoint] = []
        for forward in tunnel.localForwards {
            guard let target = forward.target, !targets.contains(target) else { continue }
            targets.append(target)
        }
        for target in targets {
            guard case .tcp(let host?, let port) = target else {
                evidence.append("\(target): a unix socket on the bastion: not checked here; step 10 goes through it")
                continue
            }
            let launch: SSHLaunch
            do { launch = try self.launch(["-vv", "-F", sshConfigPath, "-o", "ClearAllForwardings=yes", "-W", target.description, tunnel.alias]) } catch { return Self.noLogPipe(error) }
            let check = SSHCheck(launch: launch, hops: tunnel.jumps.count, goal: .channelOpen, timeout: loginTimeout + Double(tunnel.connectTimeout))
            let (result, running) = await check.start()
            let fix = hint(.targetUnreachable, target: target)
            switch result {
            case .reached(let seconds):
                _ = await running.finish()
                evidence.append("\(target): the bastion opened a connection to it (ssh -W, \(String(format: "%.2f", seconds)) s)")
            case .failed(let diagnosis) where diagnosis.kind == .forwardingForbidden:
                return failure(
                    diagnosis, context: evidence + ["the bastion refuses to forward to \(target) for this key or user"],
                    fix: hint(.forwardingForbidden) + "; `warren authorized-key \(tunnel.name)` prints the line with permitopen=\"\(target)\"")
            case .failed(let diagnosis) where diagnosis.kind == .targetUnreachable:
                return failure(diagnosis, context: evidence + ["the bastion cannot connect to \(target)"], fix: fix)
            case .failed(let diagnosis):
                return failure(diagnosis, context: evidence + ["ssh -W \(target) failed before reaching the target"])
            case .timedOut(let seconds, _):
                return .failed(
                    evidence: evidence + ["\(target): no answer within \(Int(seconds)) s: the bastion's connection to it hangs (a firewall or security group drops the packets?)"],
                    fix: fix, kind: .targetUnreachable)
            }
        }
        for forward in tunnel.remoteForwards {
            guard case .tcp(let host, let port)? = forward.target else { continue }
            let name = host ?? "localhost"
            let reached = await NetworkCheck.offPool {
                guard case .success(let addresses) = NetworkCheck.resolve(host: name, port: port) else { return false }
                for address in addresses {
                    if case .success(let fd) = NetworkCheck.connect(address, timeout: 3) {
                        close(fd)
                        return true
                    }
                }
                return false
            }
            guard reached else {
                return .failed(
                    evidence: evidence + ["remote forward \(forward): this machine cannot connect to \(name):\(port), where the bastion's connections are sent"],
                    fix: "start the service on \(name):\(port), or fix remote_forward", kind: .targetUnreachable)
            }
            evidence.append("remote forward \(forward): this machine reaches \(name):\(port)")
        }
        if evidence.isEmpty { evidence.append("no fixed targets: a SOCKS forward reaches whatever its clients ask for") }
        return .passed(evidence: evidence)
    }

    // MARK: - 10. end to end

    func checkEndToEnd() async -> StepOutcome {
        if let pid = found.runningSSH {
            let evidence = ["the tunnel is already up (ssh pid \(pid), `warren run`): probing its forwards"]
            return await probeForwards(evidence: evidence)
        }
        let launch: SSHLaunch
        do { launch = try self.launch(["-v", "-F", sshConfigPath, "-N", tunnel.alias]) } catch { return Self.noLogPipe(error) }
        let check = SSHCheck(launch: launch, hops: tunnel.jumps.count, goal: .forwardsReady(remote: !tunnel.remoteForwards.isEmpty), timeout: loginTimeout)
        let (result, running) = await check.start()
        switch result {
        case .reached(let seconds):
            let evidence = ["a temporary `ssh -N` with the generated config bound every forward in \(String(format: "%.2f", seconds)) s"]
            let outcome = await probeForwards(evidence: evidence)
            _ = await running.finish()
            if case .failed(let evidence, let fix, let kind) = outcome {
                let opened = running.watch.lines.filter { $0.contains(": open failed: ") }.map { "ssh: \($0)" }
                return .failed(evidence: evidence + opened, fix: fix, kind: kind)
            }
            return outcome.isPassed ? .passed(evidence: stopped(outcome)) : outcome
        case .failed(let diagnosis):
            return failure(diagnosis, context: ["the temporary `ssh -N` did not come up"])
        case .timedOut(let seconds, let lines):
            return .failed(
                evidence: ["the temporary `ssh -N` did not bind its forwards within \(Int(seconds)) s"] + lines.suffix(3).map { "ssh: \($0)" },
                fix: hint(.unknown), kind: .unknown)
        }
    }

    private func stopped(_ outcome: StepOutcome) -> [String] {
        guard case .passed(let evidence) = outcome else { return [] }
        return evidence + ["stopped the temporary ssh"]
    }

    /// Connects through every local forward (and SOCKS listener): a connection
    /// that stays open reaches the target; one accepted then closed does not.
    private func probeForwards(evidence: [String]) async -> StepOutcome {
        var evidence = evidence
        let wait = 1.5
        for forward in tunnel.localForwards + tunnel.dynamicForwards {
            let via = forward.target.map { " -> \($0)" } ?? " (SOCKS)"
            switch await TargetProbe.probe(forward.listen, wait: wait) {
            case .reachable:
                evidence.append("\(forward.listen)\(via): a connection through it stayed open \(wait) s: it answers")
            case .unreachable(let message):
                let fix = hint(.targetUnreachable, target: forward.target)
                return .failed(evidence: evidence + ["\(forward.listen)\(via): \(message)"], fix: fix, kind: .targetUnreachable)
            case .notListening(let message):
                return .failed(evidence: evidence + ["\(forward.listen)\(via): \(message)"], fix: hint(.localPortInUse, localPort: forward.listen.port), kind: .localPortInUse)
            }
        }
        if !tunnel.remoteForwards.isEmpty {
            evidence.append("the bastion confirmed every remote forward: \(tunnel.remoteForwards.map(\.description).joined(separator: ", "))")
        }
        return .passed(evidence: evidence)
    }
}
