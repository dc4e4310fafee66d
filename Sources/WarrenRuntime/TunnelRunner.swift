import Foundation
import Logging
import WarrenCore

/// What the supervisor needs to run one tunnel.
public struct RunnerEnvironment: Sendable {
    public var launch: SSHLaunch
    public var tunnelDirectory: String
    public var throttle: StartThrottle
    public var logger: Logger
    /// Runs before every spawn: writes the tunnel's files (resolving host key
    /// fingerprint pins). A throw fails this start, which is retried like an exit.
    public var prepare: @Sendable () async throws -> Void
    /// Called after every change of state, error, pid or restart count.
    public var onChange: @Sendable (TunnelStatus) async -> Void
}

/// Runs one tunnel: carries out what its `TunnelMachine` decides (spawn, retry,
/// probe, terminate) and feeds it what happens (ssh lines, exits, timers).
public actor TunnelRunner {
    public let tunnel: TunnelConfig
    let env: RunnerEnvironment
    private var machine: TunnelMachine
    private let origin = ContinuousClock.now
    private let classifier = StderrClassifier()
    /// Bumped at every spawn, so that timers and lines of an earlier run are ignored.
    private var run = 0
    private var control: ChildControl?
    private var holdsSlot = false
    private var childTask: Task<Void, Never>?
    private var retryTask: Task<Void, Never>?
    private var deadlineTask: Task<Void, Never>?
    private var probeTask: Task<Void, Never>?
    private var sinceDate = Date()

    public init(tunnel: TunnelConfig, environment: RunnerEnvironment) {
        self.tunnel = tunnel
        self.env = environment
        self.machine = TunnelMachine(tunnel: tunnel, now: 0)
    }

    private var now: Double {
        let elapsed = ContinuousClock.now - origin
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    public func start() async {
        let actions = machine.start(at: now)
        await publish(previous: nil)
        await perform(actions)
    }

    /// Stops the tunnel and waits until its ssh has exited.
    public func stop() async {
        await handle(.stop)
        retryTask?.cancel()
        deadlineTask?.cancel()
        probeTask?.cancel()
        await childTask?.value
        await releaseSlot()
    }

    /// Sends a signal to the running ssh child (for tests and benchmarks).
    public func signalChild(_ signal: Int32) {
        control?.send(signal)
    }

    public var status: TunnelStatus { makeStatus() }

    private func handle(_ event: TunnelEvent) async {
        let previous = (machine.state, machine.lastError, machine.pid, machine.restarts)
        let actions = machine.handle(event, at: now, random: Double.random(in: 0..<1))
        if previous.0 != machine.state { sinceDate = Date() }
        if previous.0 != machine.state || previous.1 != machine.lastError || previous.2 != machine.pid || previous.3 != machine.restarts {
            await publish(previous: previous.0)
        }
        await perform(actions)
    }

    private func perform(_ actions: [TunnelAction]) async {
        for action in actions {
            switch action {
            case .spawn:
                Task { await self.acquireSlotAndSpawn() }
            case .releaseStartSlot:
                await releaseSlot()
            case .scheduleRetry(let delay):
                retryTask?.cancel()
                retryTask = Task {
                    try? await Task.sleep(for: .seconds(delay))
                    guard !Task.isCancelled else { return }
                    await self.handle(.retryDue)
                }
            case .scheduleReadyDeadline(let delay):
                let run = self.run
                deadlineTask?.cancel()
                deadlineTask = Task {
                    try? await Task.sleep(for: .seconds(delay))
                    guard !Task.isCancelled else { return }
                    await self.deadlinePassed(run: run)
                }
            case .startProbing:
                startProbing()
            case .terminateChild:
                control?.terminate()
            }
        }
    }

    private func releaseSlot() async {
        guard holdsSlot else { return }
        holdsSlot = false
        await env.throttle.release()
    }

    private func acquireSlotAndSpawn() async {
        await env.throttle.acquire()
        holdsSlot = true
        guard machine.state == .starting else {
            await releaseSlot()
            return
        }
        run += 1
        let run = self.run
        do {
            try await env.prepare()
        } catch {
            let kind = (error as? HostKeyResolutionError)?.kind ?? .unknown
            await handle(.startFailed(ExitDiagnosis(kind: kind, message: "\(error)")))
            return
        }
        let control = ChildControl()
        self.control = control
        let launch = env.launch
        childTask = Task {
            do {
                let outcome = try await SSHChild.run(
                    launch, control: control,
                    onSpawn: { pid in await self.spawned(pid: pid, run: run) },
                    onLine: { line in await self.received(line: line, run: run) })
                await self.exited(outcome, run: run)
            } catch {
                await self.launchFailed(error, run: run)
            }
        }
    }

    private func spawned(pid: Int32, run: Int) async {
        guard run == self.run else { return }
        _ = try? AtomicFile.write("\(pid)\n", to: StaleChildren.pidFile(tunnelDirectory: env.tunnelDirectory), mode: 0o600)
        await handle(.spawned(pid: pid))
    }

    /// swift-subprocess could not start (or follow) the child.
    private func launchFailed(_ error: any Error, run: Int) async {
        guard run == self.run else { return }
        let diagnosis = ExitDiagnosis(kind: .unknown, message: "cannot run \(env.launch.executable): \(error)")
        if machine.state == .starting {
            await handle(.startFailed(diagnosis))
        } else {
            await exited(ChildOutcome(exitCode: 127, signal: nil, lastLines: [diagnosis.message]), run: run)
        }
    }

    private func received(line: String, run: Int) async {
        guard run == self.run else { return }
        if StderrClassifier.isDebug(line) {
            env.logger.trace("ssh: \(line)", metadata: ["tunnel": "\(tunnel.name)"])
        } else {
            env.logger.debug("ssh: \(line)", metadata: ["tunnel": "\(tunnel.name)"])
        }
        guard let event = classifier.classify(line: line) else { return }
        if case .notice(let text) = event {
            env.logger.info("\(text)", metadata: ["tunnel": "\(tunnel.name)"])
        }
        await handle(.ssh(event))
    }

    private func exited(_ outcome: ChildOutcome, run: Int) async {
        guard run == self.run else { return }
        unlink(StaleChildren.pidFile(tunnelDirectory: env.tunnelDirectory))
        deadlineTask?.cancel()
        probeTask?.cancel()
        control = nil
        let status = outcome.exitCode ?? (128 + (outcome.signal ?? 0))
        var diagnosis = StderrClassifier.diagnose(lines: outcome.lastLines, exitStatus: status, jumpHops: tunnel.jumps.count)
        if let signal = outcome.signal, diagnosis.kind == .connectionLost || diagnosis.kind == .unknown {
            // Killed from outside (OOM killer, an operator's kill -9): ssh said nothing.
            diagnosis = ExitDiagnosis(kind: .connectionLost, message: "ssh was killed by signal \(signal)")
        }
        await handle(.exited(diagnosis))
        await releaseSlot()
    }

    private func deadlinePassed(run: Int) async {
        guard run == self.run else { return }
        await handle(.readyDeadlinePassed)
    }

    private func startProbing() {
        let run = self.run
        let endpoints = tunnel.localForwards.map(\.listen)
        let interval = Double(tunnel.probeInterval)
        let wait = min(Double(tunnel.connectTimeout), 2)
        probeTask?.cancel()
        probeTask = Task {
            while !Task.isCancelled {
                var failure = await Self.probeAll(endpoints, wait: wait)
                if failure != nil {
                    // A child that is dying also closes probe connections; its exit
                    // event arrives within milliseconds. Look again before blaming the target.
                    try? await Task.sleep(for: .milliseconds(300))
                    guard !Task.isCancelled, self.isCurrent(run) else { return }
                    failure = await Self.probeAll(endpoints, wait: wait)
                }
                guard !Task.isCancelled, self.isCurrent(run) else { return }
                await self.handle(failure.map { .probeFailed(message: $0) } ?? .probeSucceeded)
                try? await Task.sleep(for: .seconds(interval))
            }
        }
    }

    /// The first failure among the endpoints, or nil when every target answers.
    private static func probeAll(_ endpoints: [Forward.Endpoint], wait: Double) async -> String? {
        for endpoint in endpoints {
            switch await TargetProbe.probe(endpoint, wait: wait) {
            case .reachable: continue
            case .unreachable(let message), .notListening(let message): return message
            }
        }
        return nil
    }

    private func isCurrent(_ run: Int) -> Bool { run == self.run && (machine.state == .up || machine.state == .degraded) }

    private func makeStatus() -> TunnelStatus {
        let retry = machine.retryAt.map { Date().addingTimeInterval($0 - now).formatted(.iso8601) }
        return TunnelStatus(
            name: tunnel.name, state: machine.state, since: sinceDate.formatted(.iso8601),
            pid: machine.state.hasChild ? machine.pid : nil, restarts: machine.restarts,
            forwards: TunnelStatus.describe(tunnel), lastError: machine.lastError, nextRetry: retry,
            hostKeyChecked: tunnel.checksHostKeys)  // security issue 12, finding 12
    }

    private func publish(previous: TunnelState?) async {
        let status = makeStatus()
        if let previous, previous != status.state {
            logTransition(from: previous, status)
        } else if previous == nil {
            env.logger.info("tunnel \(tunnel.name): \(status.state.rawValue)", metadata: ["tunnel": "\(tunnel.name)", "state": "\(status.state.rawValue)"])
        }
        await env.onChange(status)
    }

    private func logTransition(from previous: TunnelState, _ status: TunnelStatus) {
        var metadata: Logger.Metadata = [
            "tunnel": "\(tunnel.name)", "state": "\(status.state.rawValue)", "from": "\(previous.rawValue)",
        ]
        if let pid = status.pid { metadata["pid"] = "\(pid)" }
        if let error = status.lastError, [.backoff, .failed, .degraded].contains(status.state) {
            metadata["kind"] = "\(error.kind.rawValue)"
            metadata["message"] = "\(error.message)"
            metadata["hint"] = "\(error.hint)"
        }
        if let retryAt = machine.retryAt {
            metadata["retry_in"] = "\(String(format: "%.1f", max(0, retryAt - now)))s"
        }
        let message: Logger.Message = "tunnel \(tunnel.name): \(previous.rawValue) -> \(status.state.rawValue)"
        switch status.state {
        case .failed: env.logger.error(message, metadata: metadata)
        case .backoff, .degraded: env.logger.warning(message, metadata: metadata)
        default: env.logger.info(message, metadata: metadata)
        }
    }
}
