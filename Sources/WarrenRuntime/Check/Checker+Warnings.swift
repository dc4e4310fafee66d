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
        for (index, tunnel) in tunnels.enumerated() where index < out.count {
            out[index] = out[index].withHint(for: tunnel, defaultUser: ProcessInfo.processInfo.userName)
            if let path = tunnel.endpoint.login.certificateFile {
                if findings[path] == nil { findings[path] = await Self.certificateFinding(path, sshBinary: config.sshBinary, now: Date()) }
                let (summary, warning) = findings[path]!
                out[index].certificate = summary
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
    static func certificateFinding(_ path: String, sshBinary: String?, now: Date) async -> (String?, String?) {
        switch await CertificateReader.read(path, sshBinary: sshBinary) {
        case .failure(let error):
            return (nil, "\(error.message): run `warren doctor` for this tunnel")
        case .success(let reading):
            let summary = TerminalText.escape(reading.info.summary)
            guard let expiry = reading.expiry else { return (summary, nil) }
            let days = expiry.timeIntervalSince(now) / 86400
            guard days < CertificateReader.warningDays else { return (summary, nil) }
            let when = days < 0 ? "expired \(String(format: "%.1f", -days)) days ago" : "expires in \(String(format: "%.1f", days)) days"
            return (summary, "certificate \(path) \(when) (\(summary)): have the CA sign the key again (ssh-keygen -s CA_KEY -I ID -n PRINCIPALS KEY.pub)")
        }
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
