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

    // MARK: - 4. TCP

    func checkTCP() async -> StepOutcome {
        let endpoint = firstHop.endpoint
        let timeout = Double(tunnel.connectTimeout)
        var evidence: [String] = []
        var kinds: [FailureKind] = []
        for address in found.addresses {
            let started = Date()
            let result = await NetworkCheck.offPool { NetworkCheck.connect(address, timeout: timeout) }
            let ms = Int(Date().timeIntervalSince(started) * 1000)
            switch result {
            case .success(let fd):
                found.connected = fd
                return .passed(evidence: evidence + ["connected to \(address.text) port \(endpoint.port) in \(ms) ms"])
            case .failure(let failure):
                let after = failure == .timedOut ? " (no answer within connect_timeout = \(tunnel.connectTimeout) s)" : ""
                evidence.append("connect to \(address.text) port \(endpoint.port): \(failure.words)\(after)")
                kinds.append(failure == .refused ? .connectionRefused : .connectTimeout)
            }
        }
        // A refusal anywhere means the host answered: name that; else nothing answered.
        let kind: FailureKind = kinds.contains(.connectionRefused) ? .connectionRefused : .connectTimeout
        return .failed(evidence: evidence, fix: hint(kind, at: firstHop.alias), kind: kind)
    }

    // MARK: - 5. banner

    func checkBanner() async -> StepOutcome {
        guard let fd = found.connected else { return .failed(evidence: ["no connection from step 4"], fix: "rerun", kind: .unknown) }
        found.connected = nil
        let timeout = Double(tunnel.connectTimeout)
        let endpoint = firstHop.endpoint
        switch await NetworkCheck.offPool({ NetworkCheck.readBanner(fd, timeout: timeout) }) {
        case .banner(let banner):
            return .passed(evidence: [TerminalText.escape(banner)])
        case .silent:
            return .failed(
                evidence: ["connected, but \(endpoint.host) port \(endpoint.port) sent no SSH banner within \(tunnel.connectTimeout) s (ssh: \"Connection timed out during banner exchange\")"],
                fix: "sshd on \(endpoint.host) is hung or overloaded (MaxStartups), or a firewall lets the connect through and drops the rest: check sshd there, and that `port` is its SSH port",
                kind: .connectTimeout)
        case .closed:
            return .failed(
                evidence: ["\(endpoint.host) port \(endpoint.port) closed the connection before sending a banner"],
                fix: "sshd there refuses this machine before SSH starts (TCP wrappers, MaxStartups, fail2ban or sshguard bans): ask the bastion's admin to check its log for this machine's public address",
                kind: .connectionLost)
        case .notSSH(let line):
            return .failed(
                evidence: ["\(endpoint.host) port \(endpoint.port) answered \"\(TerminalText.escape(String(line.prefix(80))))\": not an SSH server"],
                fix: "`port` (or `host`) points at another service: use the bastion's SSH port", kind: .unknown)
        }
    }

    // MARK: - 6. host keys

    func checkHostKeys() async -> StepOutcome {
        let knownHosts = try? String(contentsOfFile: files.knownHostsPath(for: tunnel), encoding: .utf8)
        var evidence: [String] = []
        for (index, (alias, keyPath, endpoint)) in tunnel.endpointsInOrder.enumerated() {
            let name = "\(alias) (\(endpoint.host) port \(endpoint.port))"
            if endpoint.hostKeyPolicy == .insecureNoCheck {
                evidence.append("\(name): not checked: host_key_policy = \"insecure-no-check\"")
                continue
            }
            let scan = await HostKeyScanner.scan(host: endpoint.host, port: endpoint.port, timeout: tunnel.connectTimeout, sshBinary: config.sshBinary)
            found.scans["\(endpoint.host) \(endpoint.port)"] = scan
            if scan.keys.isEmpty {
                if index > 0 {
                    evidence.append("\(name): not reachable from here directly (\(scan.problem ?? "no answer")): ssh checks its key through the jump hop in step 7")
                    continue
                }
                return .failed(
                    evidence: evidence + ["\(name): ssh-keyscan got no key: \(scan.problem ?? "no answer")"],
                    fix: "the banner came but no key: check sshd's HostKey settings on \(endpoint.host)", kind: .unknown)
            }
            let learned = HostKeyCheck.parseKeyLines(knownHosts ?? "", host: alias)
            switch HostKeyCheck.verdict(for: endpoint, learned: learned, offered: scan.keys) {
            case .matches(let key):
                let how = endpoint.hostKeyPolicy == .acceptNew
                    ? "the key pinned on first use (accept-new)"
                    : endpoint.hostKeys.contains(key) ? "pinned in \(keyPath).host_key" : "its fingerprint is pinned in \(keyPath).host_key"
                evidence.append("\(name) offers \(HostKeyCheck.describe(key)): \(how)")
            case .firstUse(let key):
                evidence.append("\(name): host_key_policy = \"accept-new\" and nothing pinned yet: the first connection pins \(key.map(HostKeyCheck.describe) ?? "its key")")
            case .notChecked:
                evidence.append("\(name): not checked")
            case .mismatch(let pinned, _) where pinned.isEmpty:
                return .failed(
                    evidence: evidence + ["\(name): no host key is pinned (\(keyPath).host_key is not set); it offers \(scan.keys.map(HostKeyCheck.describe).joined(separator: ", "))"],
                    fix: hint(.hostKeyUnknown, at: alias), kind: .hostKeyUnknown)
            case .mismatch(let pinned, let offered):
                return .failed(
                    evidence: evidence + [
                        "\(name): the key it offers is not the pinned one",
                        "pinned (\(endpoint.hostKeyPolicy == .acceptNew ? "learned on first use, in \(files.knownHostsPath(for: tunnel))" : "\(keyPath).host_key")): \(pinned.joined(separator: ", "))",
                        "offered now: \(offered.joined(separator: ", "))",
                    ],
                    fix: hint(.hostKeyChanged, at: alias), kind: .hostKeyChanged)
            }
        }
        // Fingerprint pins: resolved from the scans above, not by scanning again.
        let cached = found.scans
        let sshBinary = config.sshBinary
        do {
            found.resolvedTunnel = try await HostKeyResolver.resolve(tunnel, knownHosts: knownHosts, scanner: { host, port, timeout in
                if let scan = cached["\(host) \(port)"] { return scan }
                return await HostKeyScanner.scan(host: host, port: port, timeout: timeout, sshBinary: sshBinary)
            })
        } catch {
            return .failed(evidence: evidence + [error.message], fix: hint(error.kind, message: error.message), kind: error.kind)
        }
        return .passed(evidence: evidence)
    }
}
