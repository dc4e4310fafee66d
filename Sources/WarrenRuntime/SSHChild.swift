import Foundation
import Subprocess
import Synchronization
import WarrenCore

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// How to start one tunnel's ssh.
public struct SSHLaunch: Sendable, Equatable {
    public var executable: String
    public var arguments: [String]
    /// Changes to the inherited environment (nil removes a variable). By
    /// default ssh gets no agent, no askpass and no display: everything it
    /// uses comes from the generated file.
    public var environment: [String: String?] = SSHLaunch.isolated

    public static let isolated: [String: String?] = ["SSH_AUTH_SOCK": nil, "SSH_ASKPASS": nil, "SSH_ASKPASS_REQUIRE": nil, "DISPLAY": nil]

    public init(executable: String, arguments: [String], environment: [String: String?] = SSHLaunch.isolated) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }

    /// `ssh -v -F <ssh_config> -N <alias>`, wrapped so that the child dies with the
    /// supervisor: `setpriv --pdeathsig KILL` asks the kernel to SIGKILL it when
    /// its parent dies (even by SIGKILL), and a tiny shell guard closes the race
    /// where the parent died before that request was made, by checking that its
    /// parent is still the supervisor before exec'ing ssh.
    ///
    /// `-v` (DEBUG1) is how warren knows when forwards are ready; it is passed on
    /// to ProxyJump hops. Every other setting comes from the generated file.
    public static func make(ssh: String, sshConfig: String, alias: String, setpriv: String?, supervisorPid: Int32) -> SSHLaunch {
        make(ssh: ssh, arguments: ["-v", "-F", sshConfig, "-N", alias], setpriv: setpriv, supervisorPid: supervisorPid)
    }

    /// `ssh ARGUMENTS` in the same wrapper (`warren doctor` runs its checks this way).
    public static func make(ssh: String, arguments: [String], setpriv: String?, supervisorPid: Int32) -> SSHLaunch {
        let sshArguments = [ssh] + arguments
        guard let setpriv else { return SSHLaunch(executable: ssh, arguments: Array(sshArguments.dropFirst())) }
        let guardScript = "[ \"$PPID\" = \"$1\" ] || exit 70; shift; exec \"$@\""
        return SSHLaunch(
            executable: setpriv,
            arguments: ["--pdeathsig", "KILL", "--", "/bin/sh", "-c", guardScript, "warren-guard", String(supervisorPid)] + sshArguments)
    }
}

/// How one ssh run ended.
public struct ChildOutcome: Sendable {
    /// The exit code, or nil when a signal ended it.
    public var exitCode: Int32?
    public var signal: Int32?
    /// The last lines ssh printed that were not debug chatter, oldest first.
    public var lastLines: [String]
}

/// Lets other tasks signal a running child. The child's execution is only valid
/// inside swift-subprocess's body, so it is registered here while the body runs
/// and removed before the body returns; signals go through its pidfd.
public final class ChildControl: Sendable {
    private struct Registered: @unchecked Sendable {
        var send: @Sendable (Subprocess.Signal, Bool) -> Void
        var pid: Int32
    }
    private let registered = Mutex<Registered?>(nil)
    private let terminateRequested = Mutex(false)

    public init() {}

    fileprivate func register(pid: Int32, send: @escaping @Sendable (Subprocess.Signal, Bool) -> Void) -> Bool {
        registered.withLock { $0 = Registered(send: send, pid: pid) }
        return terminateRequested.withLock { $0 }
    }

    fileprivate func unregister() {
        registered.withLock { $0 = nil }
    }

    public var pid: Int32? { registered.withLock { $0?.pid } }

    /// SIGTERM now; SIGKILL to the child's process group (ssh and any ProxyJump
    /// helper it started) if it still runs after `grace` seconds.
    public func terminate(grace: Double = 3) {
        terminateRequested.withLock { $0 = true }
        guard let entry = registered.withLock({ $0 }) else { return }
        entry.send(.terminate, false)
        let pid = entry.pid
        Task.detached { [weak self] in
            try? await Task.sleep(for: .seconds(grace))
            guard let self, let still = self.registered.withLock({ $0 }), still.pid == pid else { return }
            still.send(.kill, true)
        }
    }

    /// Sends a signal to the child itself (tests and benchmarks use SIGKILL).
    public func send(_ signal: Int32) {
        registered.withLock { $0 }?.send(Subprocess.Signal(rawValue: signal), false)
    }
}

public enum SSHChild {
    /// Runs ssh until it exits, handing every stderr line to `onLine` as it comes
    /// and reading stderr to its very end (the last lines say why ssh died).
    /// Stop it through `control`, never by cancelling this task: cancelling
    /// would close stderr before the child's last words.
    public static func run(
        _ launch: SSHLaunch, control: ChildControl,
        onSpawn: @escaping @Sendable (Int32) async -> Void,
        onLine: @escaping @Sendable (String) async -> Void
    ) async throws -> ChildOutcome {
        var options = PlatformOptions()
        // Its own process group: a Ctrl-C in the terminal reaches warren only,
        // which then stops the children in order.
        options.processGroupID = 0
        let env = Environment.inherit.updating(launch.environment.reduce(into: [:]) { $0[.init(rawValue: $1.key)!] = $1.value })
        let configuration = Configuration(
            executable: .path(FilePath(launch.executable)), arguments: Arguments(launch.arguments),
            environment: env, platformOptions: options)
        let result = try await Subprocess.run(configuration, input: .none, output: .discarded, error: .sequence) { execution in
            let pid = execution.processIdentifier.value
            let terminateEarly = control.register(pid: pid) { signal, group in
                try? execution.send(signal: signal, toProcessGroup: group)
            }
            if terminateEarly { control.terminate() }
            await onSpawn(pid)
            var tail: [String] = []
            do {
                for try await raw in execution.standardError.strings() {
                    let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : raw
                    if StderrClassifier.keepsForDiagnosis(line) {
                        tail.append(line)
                        if tail.count > 60 { tail.removeFirst(tail.count - 60) }
                    }
                    await onLine(line)
                }
            } catch {
                tail.append("warren: reading ssh's stderr failed: \(error)")
            }
            control.unregister()
            return tail
        }
        let tail = result.closureResult
        switch result.terminationStatus {
        case .exited(let code): return ChildOutcome(exitCode: code, signal: nil, lastLines: tail)
        case .signaled(let signal): return ChildOutcome(exitCode: nil, signal: signal, lastLines: tail)
        }
    }
}
