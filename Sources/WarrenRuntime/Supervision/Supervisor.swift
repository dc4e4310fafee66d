import Foundation
import Logging
import WarrenCore

/// Runs every tunnel of a config as a supervised ssh child until told to stop:
/// one supervisor per state directory, stale children of an earlier one
/// stopped first, status kept in `<state_dir>/status.json`, SIGHUP reloads.
public actor Supervisor {
    public struct Options: Sendable {
        public var configPath: String
        public var stateDirOverride: String?
        public var templatesDirectory: String?
        /// Only these tunnels (all enabled ones when empty).
        public var only: [String]
        /// Connection attempts in flight at once to any one bastion (sshd).
        public var maxStarting: Int
        /// Connection attempts in flight at once in all (`StartThrottle.defaultLimit()`: by the CPUs).
        public var maxStartingTotal = StartThrottle.defaultLimit()
        /// The longest wait, seconds, for every tunnel to settle before systemd is told READY=1.
        public var readyTimeout: Double = 60
        public var logger: Logger
        /// Observers for metrics and systemd; none by default.
        public var hooks = SupervisorHooks()
        /// `--shard I/N`: run only this shard's tunnels (nil: all of them).
        public var shard: ShardSpec?
        /// `--forward-bind`: local and dynamic forwards listen here instead.
        public var forwardBind: ForwardBind?

        public init(configPath: String, stateDirOverride: String? = nil, templatesDirectory: String? = nil, only: [String] = [], maxStarting: Int = 8, logger: Logger) {
            self.configPath = configPath
            self.stateDirOverride = stateDirOverride
            self.templatesDirectory = templatesDirectory
            self.only = only
            self.maxStarting = maxStarting
            self.logger = logger
        }
    }

    /// Why the supervisor could not start.
    public enum StartError: Error, CustomStringConvertible {
        case config(ConfigError)
        case unknownTunnels([String], ConfigError)
        case setup(String)

        public var description: String {
            switch self {
            case .config(let error): return error.description
            case .unknownTunnels(_, let error): return error.description
            case .setup(let message): return message
            }
        }
    }

    let options: Options
    let logger: Logger
    var config: WarrenConfig
    let files: TunnelFiles
    let throttle: StartThrottle
    /// One login tried first per way of logging in, within the address's penalty budget.
    let loginGate: LoginGate
    let bastionWatch: BastionWatch
    /// Members wait for their master, not for a handshake: no start budget.
    let memberThrottle = StartThrottle(limit: Int.max, perBastion: Int.max)
    /// The master of each shared connection, with its members' names.
    var masters: [ConnectionShare: Master] = [:]
    /// The runner of each running tunnel. A status from a runner that is not
    /// here (replaced by a reload, or stopped) is old news and dropped.
    var runners: [String: TunnelRunner] = [:]
    /// Runners a reload stops, while they stop (in the background: the loop
    /// serves every other tunnel meanwhile), and the tunnel to start in each
    /// one's place once it is gone (same ports).
    var retiring: [String: TunnelRunner] = [:]
    var waitingStart: [String: TunnelConfig] = [:]
    /// Whether the loop turns, for /healthz and the watchdog.
    public nonisolated let pulse = SupervisorPulse()
    /// Numbers the control sockets of tunnels' own masters (see `heldListeners`).
    var controlSerial = 0
    var statuses: [String: TunnelStatus] = [:]
    /// Renews the certificates of tunnels with `certificate_command` (see `CertificateRenewer`).
    let renewer: CertificateRenewer
    /// Each tunnel's key file, for `credentials.key` in status.
    var keyStatuses: [String: KeyStatus] = [:]
    /// Tunnels whose last refused login was an expired certificate, with ssh's line.
    var certificateRefusals: [String: String] = [:]
    let status: StatusWriter
    var statusWriter: StatusWriter { status }
    private let lock: SupervisorLock
    let launchTools: LaunchTools
    private let events: AsyncStream<SupervisorEvent>
    let sink: AsyncStream<SupervisorEvent>.Continuation
    private var readiness: StartReadiness

    /// Loads the config, takes the state directory's lock and stops stale children.
    public init(options: Options) async throws(StartError) {
        self.options = options
        self.logger = options.logger
        let config = try Self.loadConfig(options)
        self.config = config
        do {
            try AtomicFile.makeDirectory(config.stateDir, mode: 0o700)
            self.lock = try SupervisorLock.acquire(stateDir: config.stateDir)
            let templates = try Locations.templatesDirectory(explicit: options.templatesDirectory, fromConfig: config.templatesDir)
            self.files = try TunnelFiles(templatesDirectory: templates, stateDir: config.stateDir, configFile: config.file, sshBinary: config.sshBinary)
        } catch {
            throw .setup("\(error)")
        }
        self.launchTools = LaunchTools(ssh: files.sshProgram)
        // MaxStartups is per sshd: a budget per bastion, and one in all sized to the CPUs.
        self.throttle = StartThrottle(limit: options.maxStartingTotal, perBastion: options.maxStarting)
        let budget = PenaltyBudget(stateDir: config.stateDir)
        self.loginGate = LoginGate(budget: budget)
        self.bastionWatch = BastionWatch(budget: budget)
        self.status = StatusWriter(path: "\(config.stateDir)/status.json", configFile: config.file, shard: options.shard, forwardBind: options.forwardBind)
        (events, sink) = AsyncStream.makeStream(of: SupervisorEvent.self)
        self.renewer = CertificateRenewer(sshBinary: config.sshBinary, logger: options.logger, changed: { [sink] file in sink.yield(.credentialsChanged(file)) })
        readiness = StartReadiness(tunnels: [])
        for pid in await StaleChildren.stop(stateDir: config.stateDir) {
            options.logger.warning("stopped a stale ssh left by an earlier warren", metadata: ["pid": "\(pid)"])
        }
    }

    static func loadConfig(_ options: Options) throws(StartError) -> WarrenConfig {
        let config: WarrenConfig
        do {
            config = try ConfigFile.load(path: options.configPath, stateDirOverride: options.stateDirOverride)
                .deployed(shard: options.shard, bind: options.forwardBind)
        } catch {
            throw .config(error)
        }
        let unknown = options.only.filter { config.tunnel(named: $0) == nil }
        if !unknown.isEmpty {
            let names = config.tunnels.map(\.name).joined(separator: ", ")
            throw .unknownTunnels(unknown, ConfigError(file: config.file, issues: unknown.map {
                ConfigIssue(path: "", message: "no tunnel named \"\(TerminalText.escape($0))\"; tunnels: \(names)")
            }))
        }
        return config
    }

    public var stateDir: String { config.stateDir }

    /// The tunnels this supervisor runs under `config`.
    func selected(_ config: WarrenConfig) -> [TunnelConfig] {
        config.tunnels.filter { $0.enabled && (options.only.isEmpty || options.only.contains($0.name)) && options.shard?.runs($0) != false }
            .map(\.unplaced)
    }

    /// Runs every tunnel until SIGTERM or SIGINT, then stops every child and
    /// writes the final status. The runners are child tasks of one task group;
    /// everything that reaches the supervisor (their statuses, signals, the
    /// start timeout) is an event in one stream, handled in one `switch`.
    public func run(signals: AsyncStream<Int32>) async {
        await status.start(pid: getpid())
        await withDiscardingTaskGroup { group in
            group.addTask { [sink] in
                for await signal in signals { sink.yield(.signal(signal)) }
            }
            group.addTask { [sink] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: SupervisorPulse.tick)
                    sink.yield(.tick)
                }
            }
            pulse.begin("starting the tunnels")
            await renewer.configure(selected(config))
            startAll(in: &group)
            // At once, so that a reader finds every tunnel (and another shard's) listed.
            await writeStatus()
            pulse.end()
            var iterator = events.makeAsyncIterator()
            loop: while let event = await iterator.next() {
                pulse.begin(event.activity)
                defer { pulse.end() }
                switch event {
                case .tick:
                    break
                case .retired(let runner):
                    retired(runner, in: &group)
                case .status(let runner, let tunnelStatus):
                    await update(tunnelStatus, from: runner)
                case .startTimedOut:
                    announceReady(timedOut: true)
                case .signal(let signal) where signal == SIGHUP:
                    options.hooks.phaseChanged(.reloading)
                    await reload(in: &group)
                    options.hooks.phaseChanged(.reloaded)
                case .signal(let signal) where signal == RetryRequest.signal:
                    await handle(RetryRequest.take(stateDir: config.stateDir), in: &group)
                case .credentialsChanged(let file):
                    await credentialsChanged(file)
                case .signal(let signal):
                    logger.info("stopping on signal \(signal)")
                    break loop
                }
            }
            options.hooks.phaseChanged(.stopping)
            pulse.begin("stopping every tunnel")
            await stopAll()
            group.cancelAll()
        }
    }

    private func startAll(in group: inout DiscardingTaskGroup) {
        // Chosen once: asked per tunnel, it copied every tunnel's config for
        // each (a quarter of the CPU of starting a thousand).
        let chosen = selected(config)
        let chosenNames = Set(chosen.map(\.name))
        for tunnel in config.tunnels where !chosenNames.contains(tunnel.name) {
            statuses[tunnel.name] = stoppedStatus(tunnel)
        }
        for tunnel in chosen {
            start(tunnel, in: &group)
        }
        readiness = StartReadiness(tunnels: Set(runners.keys))
        logger.info("warren is supervising \(runners.count) tunnel\(runners.count == 1 ? "" : "s")", metadata: ["config": "\(config.file)", "state_dir": "\(config.stateDir)"])
        group.addTask { [sink, timeout = options.readyTimeout] in
            try? await Task.sleep(for: .seconds(timeout))
            if !Task.isCancelled { sink.yield(.startTimedOut) }
        }
        announceReady(timedOut: false)
    }

    func start(_ tunnel: TunnelConfig, in group: inout DiscardingTaskGroup) {
        // What listens beyond loopback (config or --forward-bind) is said at every start.
        for listener in tunnel.publicListeners {
            logger.warning("\(listener)", metadata: ["tunnel": "\(tunnel.name)"])
        }
        if tunnel.shareConnection {
            startMember(tunnel, in: &group)
            return
        }
        if tunnel.endpoint.hostKeyPolicy == .insecureNoCheck || tunnel.jumps.contains(where: { $0.hostKeyPolicy == .insecureNoCheck }) {
            logger.warning("host key checking is OFF (host_key_policy = \"insecure-no-check\"): anyone on the path can impersonate the bastion", metadata: ["tunnel": "\(tunnel.name)"])
        }
        refreshKeyStatus(tunnel)
        let listeners = heldListeners(for: tunnel)
        let runner = sshRunner(
            for: tunnel, listeners: listeners,
            prepare: { [files, renewer, sshBinary = config.sshBinary] in
                do {
                    try await renewer.ready(tunnel)
                } catch let error as CertificateRenewer.Unusable {
                    // The runner takes a failure kind from this error type (no ssh ran).
                    throw HostKeyResolutionError(kind: error.kind, message: error.description)
                }
                guard let listeners else { _ = try await files.write(tunnel, sshBinary: sshBinary); return }
                _ = try await files.write(tunnel, sshBinary: sshBinary, control: .holding(path: listeners.controlPath))
                // A socket left by an earlier ssh is never trusted: ssh would run without one, or a stranger could answer.
                HeldListeners.removeControlSockets(in: files.directory(for: tunnel))
            },
            publish: { [sink] runner, status in sink.yield(.status(runner, status)) })
        runners[tunnel.name] = runner
        group.addTask { await runner.run() }
    }

    /// A runner whose runs are an ssh process of their own (a tunnel, or a
    /// shared connection's master): ssh logs to the tunnel's log pipe, with
    /// the environment its login method needs (an agent, askpass).
    func sshRunner(
        for tunnel: TunnelConfig, listeners: HeldListeners? = nil, prepare: @escaping @Sendable () async throws -> Void,
        publish: @escaping @Sendable (TunnelRunner, TunnelStatus) -> Void
    ) -> TunnelRunner {
        let directory = files.directory(for: tunnel)
        let launch = SSHLaunch.make(
            ssh: launchTools.ssh, sshConfig: files.sshConfigPath(for: tunnel), alias: tunnel.alias, logPath: listeners?.logPath ?? "\(directory)/ssh.log",
            environment: SSHLaunch.environment(for: tunnel, askpassPath: files.askpassPath(for: tunnel)))
        return TunnelRunner(
            tunnel: tunnel,
            environment: RunnerEnvironment(
                runs: .process(launch), tunnelDirectory: directory, throttle: throttle, loginGate: loginGate,
                bastionWatch: bastionWatch, listeners: listeners, logger: logger,
                prepare: prepare, publish: publish))
    }

    private func update(_ published: TunnelStatus, from runner: TunnelRunner) async {
        guard runners[published.name] === runner else { return }
        let tunnelStatus = await decorated(published, tunnel: runner.tunnel)
        // Only the connection counts changed (a probe, a client): no hurry to write.
        var previous = statuses[tunnelStatus.name]
        previous?.connections = tunnelStatus.connections
        statuses[tunnelStatus.name] = tunnelStatus
        options.hooks.statusesChanged(statuses, tunnelStatus)
        await status.update(tunnelStatus, soon: previous != tunnelStatus)
        if readiness.settle(tunnelStatus) { announceReady(timedOut: false) }
    }

    /// Tells systemd (READY=1) once every tunnel has settled: is up, or its
    /// first attempt failed; or once the start timeout has passed.
    private func announceReady(timedOut: Bool) {
        guard readiness.announce(timedOut: timedOut) else { return }
        if timedOut {
            let waiting = readiness.unsettled.sorted().joined(separator: ", ")
            logger.warning("ready after \(Int(options.readyTimeout)) s with tunnels still starting: \(waiting)")
        }
        options.hooks.phaseChanged(.started(tunnels: runners.count))
    }

    func writeStatus(running: Bool = true) async {
        options.hooks.statusesChanged(statuses, nil)
        await status.replace(statuses, running: running)
        await status.flush()
    }

    func stoppedStatus(_ tunnel: TunnelConfig) -> TunnelStatus {
        TunnelStatus(
            name: tunnel.name, state: .stopped, since: Date().formatted(.iso8601), pid: nil, restarts: 0,
            forwards: TunnelStatus.describe(tunnel), lastError: nil, nextRetry: nil,
            hostKeyChecked: tunnel.checksHostKeys
        ).placed(tunnel, on: options.shard)
    }

    /// Stops every tunnel at once (SIGTERM, then SIGKILL after a grace period)
    /// and writes the final status.
    private func stopAll() async {
        await renewer.stop()
        // Masters first: their members then end without cancelling each forward.
        await withTaskGroup(of: Void.self) { group in
            for master in masters.values { group.addTask { await master.runner.stop() } }
        }
        masters.removeAll()
        let finals = await withTaskGroup(of: TunnelStatus.self) { group in
            // A runner a reload is stopping is waited for too: its ssh must not outlive warren.
            for runner in Array(runners.values) + retiring.values {
                group.addTask { await runner.stop() }
            }
            var finals: [TunnelStatus] = []
            while let final = await group.next() { finals.append(final) }
            return finals
        }
        runners.removeAll()
        retiring.removeAll()
        await releaseListeners()
        for final in finals { statuses[final.name] = final }
        await writeStatus(running: false)
        logger.info("stopped")
    }
}

/// What reaches the supervisor's loop.
enum SupervisorEvent: Sendable {
    /// A runner published a new status of its tunnel.
    case status(TunnelRunner, TunnelStatus)
    case signal(Int32)
    /// The start timeout passed: tell systemd we are ready, whatever is still starting.
    case startTimedOut
    /// A runner a reload stopped is gone.
    case retired(TunnelRunner)
    /// A second passed: the loop turns even when nothing happens (`SupervisorPulse`).
    case tick
    /// A certificate file was renewed, or its renewal failed (`CertificateRenewer`).
    case credentialsChanged(String)

    /// What the loop is busy with while it handles the event, for /healthz.
    var activity: String {
        switch self {
        case .status(let runner, _): return "the status of tunnel \(runner.tunnel.name)"
        case .signal(let signal) where signal == SIGHUP: return "a reload (SIGHUP)"
        case .signal(let signal): return "signal \(signal)"
        case .startTimedOut: return "the start timeout"
        case .retired(let runner): return "replacing tunnel \(runner.tunnel.name)"
        case .tick: return "a tick"
        case .credentialsChanged(let file): return "the certificate \(file)"
        }
    }
}

/// The programs a supervisor starts.
struct LaunchTools: Sendable {
    var ssh: String

    static func find(sshBinary: String?) -> LaunchTools {
        LaunchTools(ssh: sshBinary ?? which("ssh") ?? "/usr/bin/ssh")
    }

    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
