import Foundation
import WarrenCore

extension KeyPairs {
    /// The tunnel as it logs in with the next key: every hop that uses the
    /// current key file uses the next one, and no certificate (it certifies
    /// the current key).
    public func withNextKey(_ tunnel: TunnelConfig) -> TunnelConfig {
        var next = tunnel
        func swap(_ endpoint: inout SSHEndpoint) {
            guard endpoint.identityFile == current else { return }
            endpoint.identityFile = self.next
            endpoint.login.certificateFile = nil
            endpoint.login.certificateCommand = nil
        }
        swap(&next.endpoint)
        for index in next.jumps.indices { swap(&next.jumps[index]) }
        return next
    }

    /// Proves the next key logs in with one real login (a session without
    /// forwards, the check's `BastionProbe`), within the address's penalty
    /// budget: reserved before, refunded when it logs in (as doctor does).
    /// Uses `<tunnel dir>/ssh_config.next`, rendered like the tunnel's own
    /// (same known_hosts, same options) with the next key; removed after.
    public func proveNext(
        _ tunnel: TunnelConfig, files: TunnelFiles, sshBinary: String?, stateDir: String, timeout: Double
    ) async -> BastionAnswer {
        do {
            // The tunnel's own files first: known_hosts, fingerprint pins resolved.
            try await files.write(tunnel, sshBinary: sshBinary)
        } catch let error as HostKeyResolutionError {
            return .failed(error.kind, error.message)
        } catch {
            return .failed(.unknown, "cannot write the generated files: \(error)")
        }
        let trial = withNextKey(tunnel)
        let rendered = files.render(trial)
        let path = files.directory(for: tunnel) + "/ssh_config.next"
        let directory: SafeDirectory
        do {
            directory = try SafeDirectory.open(AtomicFile.absolute(stateDir)).subdirectory("tunnels").subdirectory(tunnel.name)
            try AtomicFile.write(rendered.sshConfig, named: "ssh_config.next", in: directory, durable: false)
        } catch {
            return .failed(.unknown, "cannot write \(path): \(error)")
        }
        defer { directory.remove("ssh_config.next") }
        let hosts = StartThrottle.bastions(of: tunnel)
        let budget = PenaltyBudget(stateDir: stateDir)
        await budget.reserveFailedLogin(on: hosts)
        let answer = await BastionProbe(tunnel: trial, sshConfig: path, sshBinary: sshBinary)
            .ask(about: nil, until: .now + .seconds(timeout))
        switch answer {
        case .failed(let kind, _) where kind.isLoginRefusal: break
        case .reachable, .targetFailed: await budget.refundFailedLogin(on: hosts)
        default: await budget.refundFailedLogin(on: hosts, keeping: PenaltyBudget.abandonedConnection)
        }
        return answer
    }
}
