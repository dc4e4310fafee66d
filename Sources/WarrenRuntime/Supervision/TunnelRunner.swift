import Foundation
import Logging
import Synchronization
import WarrenCore

/// What the supervisor gives a runner.
public struct RunnerEnvironment: Sendable {
    /// What one run of the tunnel is.
    public enum Runs: Sendable {
        /// An ssh process of its own; the launch's `logPath` is the tunnel's log pipe.
        case process(SSHLaunch)
        /// Forwards on a shared connection's master.
        case shared(SharedMaster)
    }

    public var runs: Runs
    public var tunnelDirectory: String
    public var throttle: StartThrottle
    /// One login tried first for tunnels that log in the same way; nil for
    /// members of a shared connection (their master logs in).
    public var loginGate: LoginGate?
    /// Asks whether a refusing bastion accepts again, once for all its tunnels.
    public var bastionWatch: BastionWatch
    /// The local forwards whose listeners warren holds, and the master they
    /// go to; nil: ssh listens for them itself (`-L`).
    public var listeners: HeldListeners?
    public var logger: Logger
    /// Runs before every spawn: writes the tunnel's files (resolving host key
    /// fingerprint pins). A throw ends that run before ssh starts.
    public var prepare: @Sendable () async throws -> Void
    /// Receives every new status of the tunnel, in order.
    public var publish: @Sendable (TunnelRunner, TunnelStatus) -> Void

    public init(
        runs: Runs, tunnelDirectory: String, throttle: StartThrottle, loginGate: LoginGate? = nil,
        bastionWatch: BastionWatch = BastionWatch(), listeners: HeldListeners? = nil, logger: Logger,
        prepare: @escaping @Sendable () async throws -> Void,
        publish: @escaping @Sendable (TunnelRunner, TunnelStatus) -> Void
    ) {
        self.runs = runs
        self.loginGate = loginGate
        self.bastionWatch = bastionWatch
        self.listeners = listeners
        self.tunnelDirectory = tunnelDirectory
        self.throttle = throttle
        self.logger = logger
        self.prepare = prepare
        self.publish = publish
    }
}

/// Runs one tunnel as one event loop: everything that happens to the tunnel
/// (ssh's log, the child's exit, timers, probe results, stop) is an event in
/// one stream; its `TunnelMachine` decides; the loop carries out the actions.
/// The child, its timers and probes are child tasks of a task group the loop
/// owns, so nothing of a tunnel outlives `run()`.
public final class TunnelRunner: Sendable {
    public let tunnel: TunnelConfig
    /// The forwards as status lists them: the same for every status of the runner.
    private let forwards: [String]
    /// The status is made after every event (each line ssh logs), and its two
    /// times change only on transitions: formatting them each time was much
    /// of a probe's cost at a thousand tunnels.
    private let dates = DateTexts()
    let env: RunnerEnvironment
    private let events: AsyncStream<TunnelEvent>
    let input: AsyncStream<TunnelEvent>.Continuation
    private let ending = Mutex(Ending())
    /// Retired by a reload: its ssh ends once the connections it carries have.
    private let retiring = Mutex(false)
    private let clock = RunnerClock()
    /// The sshd instances a start dials (every hop and the bastion): each one's start budget counts it.
    private let bastions: [String]
    /// The login this tunnel makes (see `LoginGate`).
    private let loginKey: String
    /// This runner's number at the listeners warren holds (see `ListenerHub.Owner`).
    let generation = ListenerHub.nextGeneration()

    private struct Ending {
        var finalStatus: TunnelStatus?
        var waiters: [CheckedContinuation<TunnelStatus, Never>] = []
    }

    public init(tunnel: TunnelConfig, environment: RunnerEnvironment) {
        self.tunnel = tunnel
        self.forwards = TunnelStatus.describe(tunnel)
        self.env = environment
        self.bastions = StartThrottle.bastions(of: tunnel)
        self.loginKey = LoginGate.key(for: tunnel)
        (events, input) = AsyncStream.makeStream(of: TunnelEvent.self)
    }

    /// Stops the tunnel; returns once no ssh of it exists or can still start,
    /// with its final status.
    @discardableResult
    public func stop() async -> TunnelStatus {
        input.yield(.stop)
        return await withCheckedContinuation { continuation in
            let done = ending.withLock { ending -> TunnelStatus? in
                if let status = ending.finalStatus { return status }
                ending.waiters.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// Stops the tunnel for a reload that replaces it, without waiting: new
    /// connections wait for the replacement's ssh, while this one's ssh
    /// carries the connections open through it to their end, then ends.
    /// Only for a tunnel whose ssh holds no port (all its forwards are
    /// listeners warren holds).
    public func retire() {
        retiring.withLock { $0 = true }
        input.yield(.stop)
    }

    /// Starts the next attempt now, if the tunnel is waiting to retry.
    public func retryNow() {
        input.yield(.retryNow)
    }

    /// The loop: runs until the tunnel is stopped and its ssh is gone.
    public func run() async {
        var machine = TunnelMachine(tunnel: tunnel, now: clock.now, defaultUser: ProcessInfo.processInfo.userName)
        var child = CurrentChild()
        // The listeners from the start, not from the first spawn (which may wait
        // for a login, a slot or a backoff): the port is the tunnel's from now on.
        // A port another program holds fails the first run, and is watched.
        _ = holdListeners()
        await withDiscardingTaskGroup { group in
            var actions = machine.start(at: clock.now)
            var iterator = events.makeAsyncIterator()
            var shown = makeStatus(machine)
            report(shown, .first, machine)
            var fresh = false
            var serving = false
            while true {
                for action in actions {
                    await perform(action, in: &group, child: &child, fresh: fresh)
                }
                // Only what changed is published (the status is all there is to compare).
                let status = makeStatus(machine)
                let up = machine.state == .up || machine.state == .degraded
                if up != serving || (status.state == .failed && shown.state != .failed) {
                    serving = up
                    routeListeners(serving: up, gaveUp: status.state == .failed)
                }
                if status.state != shown.state, !machine.heldForLogin { await settleLogin(from: shown.state, to: status) }
                if status != shown {
                    report(status, status.state == shown.state ? .details : .transition(from: shown.state), machine)
                    shown = status
                }
                if machine.isFinished { break }
                guard let event = await iterator.next() else { break }
                fresh = event == .retryNow
                actions = machine.handle(event, at: clock.now, random: Double.random(in: 0..<1))
            }
            // Timers and a pending slot request; the child has already exited.
            group.cancelAll()
        }
        await finish(machine)
    }

    /// The single place where actions are carried out.
    private func perform(_ action: TunnelAction, in group: inout DiscardingTaskGroup, child: inout CurrentChild, fresh: Bool) async {
        switch action {
        case .acquireSlot:
            group.addTask { [input, throttle = env.throttle, gate = env.loginGate, bastions, loginKey, name = tunnel.name] in
                if let gate, case .refused(let diagnosis) = await gate.admit(loginKey, tunnel: name, hosts: bastions, fresh: fresh, input: input) {
                    input.yield(.loginHeld(diagnosis))
                    return
                }
                if await throttle.acquire(bastions: bastions) { input.yield(.slotGranted) }
            }
        case .releaseSlot:
            await env.throttle.release(bastions: bastions)
        case .spawn(let run):
            let control = ChildControl()
            child = CurrentChild(run: run, control: control)
            switch env.runs {
            case .process(let launch): group.addTask { await self.runChild(run, launch, control: control) }
            case .shared(let master): group.addTask { await self.runOnMaster(run, control: control, master: master) }
            }
        case .terminate(let run):
            guard child.run == run, let control = child.control else { break }
            if let listeners = env.listeners, retiring.withLock({ $0 }) {
                group.addTask { [generation] in
                    await listeners.hub.drained(generation)
                    control.terminate()
                }
            } else {
                control.terminate()
            }
        case .kill(let run):
            guard child.run == run, let control = child.control else { break }
            if let listeners = env.listeners, retiring.withLock({ $0 }) {
                group.addTask { [generation] in
                    await listeners.hub.drained(generation)
                    try? await Task.sleep(for: .seconds(TunnelMachine.teardown.grace))
                    control.kill()
                }
            } else {
                control.kill()
            }
        case .arm(let timer, let delay):
            group.addTask { [input] in
                try? await Task.sleep(for: .seconds(delay))
                if !Task.isCancelled { input.yield(.timer(timer)) }
            }
        case .cancel:
            // The machine has forgotten the timer and ignores it if it fires;
            // its task ends at its deadline or with the loop.
            break
        case .probe(let run, let hold):
            group.addTask { [input] in
                input.yield(.probed(run: run, await self.probeHeld(hold: hold)))
            }
        case .check(.localPorts):
            input.yield(.watched(.localPorts, cleared: localPortsFree()))
        case .check(.bastion):
            // A TCP connect, no handshake: sshd's banner (or the refusal) comes at once.
            group.addTask { [input, watch = env.bastionWatch, endpoint = tunnel.endpoint] in
                input.yield(.watched(.bastion, cleared: await watch.accepts(host: endpoint.host, port: endpoint.port)))
            }
        }
    }

    /// One ssh run: prepare the files, spawn, read its log, report its end.
    /// Always ends with exactly one `.exited` for `run`.
    private func runChild(_ run: Int, _ launch: SSHLaunch, control: ChildControl) async {
        do {
            try await env.prepare()
        } catch {
            let kind = (error as? HostKeyResolutionError)?.kind ?? .unknown
            input.yield(.exited(run: run, .diagnosed(ExitDiagnosis(kind: kind, message: "\(error)"))))
            return
        }
        // Held before ssh starts: a port another program holds fails the run as ssh's bind would.
        if let failure = holdListeners() {
            input.yield(.exited(run: run, .diagnosed(failure)))
            return
        }
        let pidFile = StaleChildren.pidFile(tunnelDirectory: env.tunnelDirectory)
        let reader = OutputReader(tunnel: tunnel.name, logger: env.logger)
        let spawned = SpawnedPID()
        let outcome: ChildOutcome
        do {
            outcome = try await SSHChild.run(
                launch, control: control,
                onSpawn: { [input] pid in
                    spawned.value.withLock { $0 = pid }
                    // A hint for cleaning up after a crash, not a record: no fsync on the spawn path.
                    _ = try? AtomicFile.write("\(pid)\n", to: pidFile, mode: 0o600, durable: false)
                    input.yield(.spawned(run: run, pid: pid))
                },
                onOutput: { [input] output in
                    if let line = reader.read(output) { input.yield(.log(run: run, line)) }
                })
        } catch {
            input.yield(.exited(run: run, .diagnosed(ExitDiagnosis(kind: .unknown, message: "cannot run \(launch.executable): \(error)"))))
            return
        }
        // Only its own: a retired run's ssh may end after its replacement wrote the file.
        if (try? String(contentsOfFile: pidFile, encoding: .utf8)) == "\(spawned.value.withLock { $0 })\n" { unlink(pidFile) }
        input.yield(.exited(run: run, .process(exitCode: outcome.exitCode, signal: outcome.signal)))
    }

    /// Tells the login gate what became of an attempt: up is a login that
    /// works; a run that ended before coming up says whether the login was refused.
    private func settleLogin(from previous: TunnelState, to status: TunnelStatus) async {
        guard let gate = env.loginGate else { return }
        if status.state == .up {
            await gate.settle(loginKey, tunnel: tunnel.name, .loggedIn)
        } else if previous == .connecting || previous == .starting, status.state == .failed || status.state == .backoff || status.state == .stopped {
            let refused = status.lastError.flatMap { $0.kind.isLoginRefusal ? ExitDiagnosis(kind: $0.kind, message: $0.message) : nil }
            await gate.settle(loginKey, tunnel: tunnel.name, refused.map { .refused($0) } ?? .inconclusive)
        }
    }

    private func finish(_ machine: TunnelMachine) async {
        await env.loginGate?.settle(loginKey, tunnel: tunnel.name, .inconclusive)
        input.finish()
        // A slot granted while the loop was ending is given back.
        for await event in events where event == .slotGranted {
            await env.throttle.release(bastions: bastions)
        }
        let status = makeStatus(machine)
        let waiters = ending.withLock { ending in
            ending.finalStatus = status
            defer { ending.waiters = [] }
            return ending.waiters
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    // MARK: - Status

    private func makeStatus(_ machine: TunnelMachine) -> TunnelStatus {
        TunnelStatus(
            name: tunnel.name, state: machine.shownState, since: dates.text(at: machine.since, clock),
            pid: machine.state.hasChild ? machine.pid : nil, restarts: machine.restarts,
            forwards: forwards, lastError: machine.lastError,
            nextRetry: machine.retryAt.map { dates.text(at: $0, clock) },
            connections: machine.connections.counts, hostKeyChecked: tunnel.checksHostKeys,
            idleClose: IdleCloseStatus(machine.idleCloses))
    }

    private func report(_ status: TunnelStatus, _ change: StatusChange, _ machine: TunnelMachine) {
        TransitionLog(logger: env.logger, tunnel: tunnel.name).log(status, change, retryIn: machine.retryAt.map { $0 - clock.now })
        env.publish(self, status)
    }
}

/// The pid a run's ssh was spawned with.
private final class SpawnedPID: Sendable {
    let value = Mutex<Int32>(0)
}

/// The child of the current run, for signals.
private struct CurrentChild {
    var run = 0
    var control: ChildControl?
}

/// Seconds since the runner started, and the wall-clock time of such a second.
struct RunnerClock: Sendable {
    private let origin = ContinuousClock.now
    private let originDate = Date()

    var now: Double { (ContinuousClock.now - origin).seconds }

    func date(at seconds: Double) -> Date { originDate.addingTimeInterval(seconds) }
}

/// RFC 3339 texts of the runner's clock, the last few kept.
final class DateTexts: Sendable {
    private let kept = Mutex<[(Double, String)]>([])

    func text(at seconds: Double, _ clock: RunnerClock) -> String {
        if let hit = kept.withLock({ $0.first { $0.0 == seconds }?.1 }) { return hit }
        let text = clock.date(at: seconds).formatted(.iso8601)
        kept.withLock { kept in
            kept.append((seconds, text))
            if kept.count > 4 { kept.removeFirst() }
        }
        return text
    }
}
