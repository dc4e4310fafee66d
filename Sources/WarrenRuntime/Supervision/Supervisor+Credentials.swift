import Foundation
import Logging
import WarrenCore

/// The supervisor's side of credentials over time: what status says about
/// each tunnel's key and certificate, a refused login told apart as an
/// expired certificate, and what `warren rotate` asks of a running supervisor.
extension Supervisor {
    /// The runner's status with `credentials`, and with `certificate_expired`
    /// in place of `auth_failed` when the tunnel's certificate was outside its
    /// validity at the refusal (ssh cannot say so; warren's own reading can).
    func decorated(_ status: TunnelStatus, tunnel: TunnelConfig?) async -> TunnelStatus {
        guard let tunnel else { return status }
        var status = status
        let name = status.name
        var certificate: CertificateStatus?
        if tunnel.endpoint.login.certificateFile != nil {
            if let error = status.lastError, error.kind == .authFailed {
                if certificateRefusals[name] != error.message, await renewer.explainsRefusal(tunnel, now: Date().timeIntervalSince1970) {
                    certificateRefusals[name] = error.message
                    logger.warning("the login was refused with an expired or not yet valid certificate", metadata: ["tunnel": "\(name)"])
                }
                if certificateRefusals[name] == error.message {
                    status.lastError = TunnelError(kind: .certificateExpired, message: error.message, tunnel: tunnel, defaultUser: ProcessInfo.processInfo.userName)
                }
            } else {
                certificateRefusals[name] = nil
            }
            if tunnel.endpoint.login.certificateCommand != nil { certificate = await renewer.status(of: tunnel) }
        }
        let key = keyStatuses[name]
        if key != nil || certificate != nil { status.credentials = CredentialStatus(key: key, certificate: certificate) }
        return status
    }

    /// The key file's fingerprint and age, read when the tunnel starts and after a rotation.
    func refreshKeyStatus(_ tunnel: TunnelConfig) {
        keyStatuses[tunnel.name] = KeyPairs(tunnel: tunnel).map { KeyPairs.status(of: $0.current) }
    }

    /// A certificate file changed (renewed, or a renewal failed): its
    /// tunnels' statuses say so, and one refused for its expiry tries again.
    func credentialsChanged(_ file: String) async {
        for tunnel in runners.values.map(\.tunnel) where tunnel.endpoint.login.certificateFile == file {
            if certificateRefusals[tunnel.name] != nil, let status = await renewer.status(of: tunnel), status.lastRenewal?.ok == true {
                runners[tunnel.name]?.retryNow()
            }
            guard let current = statuses[tunnel.name] else { continue }
            let fresh = await decorated(current, tunnel: tunnel)
            statuses[tunnel.name] = fresh
            options.hooks.statusesChanged(statuses, fresh)
            await statusWriter.update(fresh, soon: true)
        }
    }

    /// `warren retry` and `warren rotate` (see `RetryRequest`).
    func handle(_ request: RetryRequest.Taken, in group: inout DiscardingTaskGroup) async {
        if request.retryAll || !request.retry.isEmpty {
            logger.info("retry requested for \(request.retryAll ? "every waiting tunnel" : request.retry.joined(separator: ", "))")
            for (name, runner) in runners where request.retryAll || request.retry.contains(name) { runner.retryNow() }
        }
        for name in Set(request.rotated + request.reconnect).sorted() {
            guard let tunnel = selected(config).first(where: { $0.name == name }) else { continue }
            refreshKeyStatus(tunnel)
            await renewer.keyChanged(tunnel)
            let now = request.reconnect.contains(name)
            logger.info("key rotated\(now ? ": reconnecting with the new key now" : "; the running connection keeps the old key until it drops")", metadata: ["tunnel": "\(name)"])
            if now, let runner = runners.removeValue(forKey: name) {
                // The same path as a reload that changed the tunnel: stopped, then started once gone.
                retire(runner, in: &group)
                waitingStart[name] = tunnel
            }
            if let current = statuses[name] {
                let fresh = await decorated(current, tunnel: tunnel)
                statuses[name] = fresh
                options.hooks.statusesChanged(statuses, fresh)
                await statusWriter.update(fresh, soon: true)
            }
        }
    }
}
