import Foundation
import Synchronization
import WarrenCore

/// Asks a tunnel's bastion, with a one-shot ssh and the tunnel's generated
/// ssh_config, whether it can reach a target (`ssh -vv -W HOST:PORT ALIAS`) or,
/// with no target, whether it lets warren log in. No local port is bound:
/// `-W` implies ClearAllForwardings, and the session form says so explicitly.
/// The ssh dies with warren (see `ChildReactor`), so a check killed by cron's
/// timeout leaves nothing behind. What its stderr means is `BastionProbeReader`'s
/// business.
public struct BastionProbe: Sendable {
    public let tunnel: TunnelConfig
    public let sshConfig: String
    let tools: LaunchTools

    public init(tunnel: TunnelConfig, sshConfig: String, sshBinary: String?) {
        self.tunnel = tunnel
        self.sshConfig = sshConfig
        self.tools = LaunchTools.find(sshBinary: sshBinary)
    }

    /// The ssh command line: `-W` for a target, a forward-less session otherwise.
    /// The target comes from the validated config (no whitespace, no leading
    /// `-`), and `-W` takes it as its value.
    public func launch(target: Forward.Endpoint?) -> SSHLaunch {
        var arguments: [String]
        if let target {
            arguments = [tools.ssh, "-vv", "-F", sshConfig, "-W", target.description, tunnel.alias]
        } else {
            // SessionType=none rather than -N: a starting supervisor stops stale
            // `ssh -F ... -N` children of its state directory, and this is not one.
            arguments = [tools.ssh, "-v", "-F", sshConfig, "-o", "SessionType=none", "-o", "ClearAllForwardings=yes", tunnel.alias]
        }
        // The askpass helper is written next to the ssh_config (TunnelFiles).
        let askpass = (sshConfig as NSString).deletingLastPathComponent + "/askpass"
        let environment = SSHLaunch.environment(for: tunnel, askpassPath: askpass)
        return SSHLaunch(executable: tools.ssh, arguments: Array(arguments.dropFirst()), environment: environment)
    }

    /// Runs the ssh until the bastion answers, ssh exits, or `deadline` passes
    /// (then ssh is stopped and the answer is `noAnswer`).
    public func ask(about target: Forward.Endpoint?, until deadline: ContinuousClock.Instant) async -> BastionAnswer {
        let started = ContinuousClock.now
        guard started < deadline else { return .noAnswer("no time was left to ask the bastion") }
        let reader = Mutex(BastionProbeReader(shape: target == nil ? .session : .stdioForward, hops: tunnel.jumps.count))
        let stopping = Mutex(false)
        let control = ChildControl()
        @Sendable func stop() {
            let first = stopping.withLock { flag in
                defer { flag = true }
                return !flag
            }
            // ssh exits on SIGTERM within milliseconds; SIGKILL is for a stuck one.
            if first { control.stop(.standard(grace: 0.5)) }
        }
        let timer = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            guard !Task.isCancelled else { return }
            stop()
        }
        defer { timer.cancel() }
        let outcome: ChildOutcome
        do {
            outcome = try await SSHChild.run(
                launch(target: target).loggingApart(), control: control,
                onOutput: { output in
                    guard case .log(let line) = output else { return }
                    if reader.withLock({ $0.read(line) }) { stop() }
                })
        } catch {
            return .failed(.unknown, "cannot start \(tools.ssh): \(error)")
        }
        let result = reader.withLock { $0 }
        if !result.answeredYes, stopping.withLock({ $0 }) {
            let waited = ((deadline - started) / .seconds(1) * 10).rounded() / 10
            var message = "the bastion did not answer in time (waited \(waited) s)"
            if let last = result.lines.last(where: { !$0.hasPrefix("OpenSSH_") }) { message += "; ssh's last words: \(last)" }
            return .noAnswer(message)
        }
        return result.answer(exitStatus: outcome.exitCode)
    }
}
