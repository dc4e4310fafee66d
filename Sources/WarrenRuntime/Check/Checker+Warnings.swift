import Foundation
import WarrenCore

/// Hints with the tunnels' real values, and what `warren check` warns about on a tunnel that still works: a user
/// certificate about to expire, and (with no supervisor) a local port that
/// another program holds, which the tunnel will fail to bind when it starts.
extension Checker {
    func completed(_ checks: [TunnelCheck], mode: CheckMode, supervisorPid: Int32? = nil) async -> [TunnelCheck] {
        var out = checks
        // Each certificate read once: `[defaults]` often gives every tunnel the same one.
        var findings: [String: (String?, String?)] = [:]
        let renewals = mode == .supervisor ? Self.renewals(stateDir: config.stateDir) : [:]
        for (index, tunnel) in tunnels.enumerated() where index < out.count {
            out[index] = out[index].withHint(for: tunnel, defaultUser: ProcessInfo.processInfo.userName)
            if let path = tunnel.endpoint.login.certificateFile {
                let renewed = tunnel.endpoint.login.certificateCommand != nil
                if findings[path] == nil { findings[path] = await Self.certificateFinding(path, sshBinary: config.sshBinary, now: Date(), renewed: renewed) }
                let (summary, warning) = findings[path]!
                out[index].certificate = summary
                if let warning { out[index].warnings.append(warning) }
                if let failed = renewals[tunnel.name], !failed.ok {
                    out[index].warnings.append("the last renewal of the certificate (certificate_command, \(failed.at)) failed: \(failed.message)")
                }
            }
            if let (key, warning) = Self.keyFinding(tunnel, now: Date()) {
                out[index].key = key
                if let warning { out[index].warnings.append(warning) }
            }
            if mode == .direct { out[index].warnings += Self.takenLocalPorts(tunnel) }
            if mode == .supervisor, out[index].kind == .failure(.localPortInUse), let supervisorPid {
                // The supervisor's status says a port is taken; name who has it.
                let excluding = Set([supervisorPid] + [out[index].supervisor?.pid].compactMap { $0 })
                let holders = PortHolders.describe(tunnel, excluding: excluding)
                if !holders.isEmpty { out[index].message = [out[index].message, holders.joined(separator: "; ")].compactMap { $0 }.joined(separator: "; ") }
            }
            out[index].beyondLoopback = tunnel.publicListeners.map(\.description)
        }
        return out
    }

    /// The certificate's summary, and a warning when it expires within `CertificateReader.warningDays`.
    /// A certificate warren renews (`renewed`) is short-lived by design: only an expired one is a warning.
    static func certificateFinding(_ path: String, sshBinary: String?, now: Date, renewed: Bool = false) async -> (String?, String?) {
        switch await CertificateReader.read(path, sshBinary: sshBinary) {
        case .failure(let error) where renewed && !FileManager.default.fileExists(atPath: path):
            return (nil, "no certificate at \(path) yet: warren run makes it with certificate_command (\(error.message))")
        case .failure(let error):
            return (nil, "\(error.message): run `warren doctor` for this tunnel")
        case .success(let reading):
            let summary = TerminalText.escape(reading.info.summary)
            guard let expiry = reading.expiry else { return (summary, nil) }
            let days = expiry.timeIntervalSince(now) / 86400
            guard days < (renewed ? 0 : CertificateReader.warningDays) else { return (summary, nil) }
            let when = days < 0 ? "expired \(String(format: "%.1f", -days)) days ago" : "expires in \(String(format: "%.1f", days)) days"
            return (summary, "certificate \(path) \(when) (\(summary)): have the CA sign the key again (ssh-keygen -s CA_KEY -I ID -n PRINCIPALS KEY.pub)")
        }
    }

    /// The key's fingerprint and age, and a warning past `key_max_age_days`.
    static func keyFinding(_ tunnel: TunnelConfig, now: Date) -> (String, String?)? {
        guard let pairs = KeyPairs(tunnel: tunnel), let age = KeyPairs.ageDays(of: pairs.current, now: now) else { return nil }
        let days = Int(age.rounded(.down))
        let fingerprint = KeyPairs.fingerprint(of: pairs.current + ".pub") ?? "no .pub"
        let summary = "\(fingerprint) (\(pairs.current), \(days) day\(days == 1 ? "" : "s") old)"
        guard let limit = tunnel.keyMaxAgeDays, age > Double(limit) else { return (summary, nil) }
        return (summary, "key \(pairs.current) is \(days) days old, past key_max_age_days = \(limit): rotate it (`warren keygen --tunnel \(tunnel.name) --next`, the admin adds the printed line, then `warren rotate \(tunnel.name)`)")
    }

    /// The last certificate renewal of each tunnel, from the running supervisor's status.
    static func renewals(stateDir: String) -> [String: RenewalResult] {
        var out: [String: RenewalResult] = [:]
        for status in SupervisorPresence.look(stateDir: stateDir).liveReport?.tunnels ?? [] {
            if let last = status.credentials?.certificate?.lastRenewal { out[status.name] = last }
        }
        return out
    }

    /// Local TCP listeners of the tunnel that another process holds now.
    static func takenLocalPorts(_ tunnel: TunnelConfig) -> [String] {
        var warnings: [String] = []
        for forward in tunnel.localForwards + tunnel.dynamicForwards where !LocalPorts.canBind([forward]) {
            guard case .tcp(_, let port) = forward.listen else { continue }
            // `listener` escapes the command line it reads.
            let who = NetworkCheck.listener(port: port).map { "pid \($0.pid) (\($0.command))" } ?? "a process this user cannot see"
            warnings.append("local port \(forward.listen) is taken by \(who): the tunnel cannot listen there when it starts; stop that program (ss -ltnp 'sport = :\(port)') or change local_forward")
        }
        return warnings
    }
}
