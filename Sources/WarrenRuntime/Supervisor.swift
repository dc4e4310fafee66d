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
        /// Connection attempts in flight at once.
        public var maxStarting: Int
        public var logger: Logger
        /// Observers for metrics and systemd; none by default.
        public var hooks = SupervisorHooks()

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
    private var config: WarrenConfig
    private var files: TunnelFiles
    private let throttle: StartThrottle
    private var runners: [String: TunnelRunner] = [:]
    /// Bumped each time a tunnel gets a new runner, so that a replaced runner's
    /// last words (its `stopped`) do not overwrite its successor's status.
    private var generations: [String: Int] = [:]
    private var statuses: [String: TunnelStatus] = [:]
    private let status: StatusWriter
    private let lock: SupervisorLock
    private let launchTools: LaunchTools

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
            self.files = try TunnelFiles(templatesDirectory: templates, stateDir: config.stateDir, configFile: config.file)
        } catch {
            throw .setup("\(error)")
        }
        self.launchTools = LaunchTools.find(sshBinary: config.sshBinary)
        self.throttle = StartThrottle(limit: options.maxStarting)
        self.status = StatusWriter(path: "\(config.stateDir)/status.json", configFile: config.file)
        for pid in await StaleChildren.stop(stateDir: config.stateDir) {
            options.logger.warning("stopped a stale ssh left by an earlier warren", metadata: ["pid": "\(pid)"])
        }
        if launchTools.setpriv == nil {
            options.logger.warning("setpriv (util-linux) not found: ssh children will not die with warren if it is killed; install util-linux")
        }
    }

    private static func loadConfig(_ options: Options) throws(StartError) -> WarrenConfig {
        let config: WarrenConfig
        do {
            config = try ConfigFile.load(path: options.configPath, stateDirOverride: options.stateDirOverride)
        } catch {
            throw .config(error)
        }
        let unknown = options.only.filter { config.tunnel(named: $0) == nil }
        if !unknown.isEmpty {
            let names = config.tunnels.map(\.name).joined(separator: ", ")
            throw .unknownTunnels(unknown, ConfigError(file: config.file, issues: unknown.map {
                ConfigIssue(path: "", message: "no tunnel named \"\(ValueRules.printable($0))\"; tunnels: \(names)")
            }))
        }
        return config
    }

    public var stateDir: String { config.stateDir }

    /// The tunnels this supervisor runs under `config`.
    private func selected(_ config: WarrenConfig) -> [TunnelConfig] {
        config.tunnels.filter { $0.enabled && (options.only.isEmpty || options.only.contains($0.name)) }
    }

    /// Starts every tunnel, then serves signals until SIGTERM or SIGINT; stops
    /// every child and writes the final status.
    public func run(signals: AsyncStream<Int32>) async {
        await status.start(pid: getpid())
        for tunnel in config.tunnels where !selected(config).contains(tunnel) {
            statuses[tunnel.name] = stoppedStatus(tunnel)
        }
        for tunnel in selected(config) {
            await startTunnel(tunnel)
        }
        await writeStatus()
        logger.info("warren is supervising \(runners.count) tunnel\(runners.count == 1 ? "" : "s")", metadata: ["config": "\(config.file)", "state_dir": "\(config.stateDir)"])
        options.hooks.phaseChanged(.started(tunnels: runners.count))
        for await signal in signals {
            if signal == SIGHUP {
                options.hooks.phaseChanged(.reloading)
                await reload()
                options.hooks.phaseChanged(.reloaded)
            } else {
                logger.info("stopping on signal \(signal)")
                break
            }
        }
        options.hooks.phaseChanged(.stopping)
        await stopAll()
    }

    private func startTunnel(_ tunnel: TunnelConfig) async {
        if tunnel.endpoint.hostKeyPolicy == .insecureNoCheck || tunnel.jumps.contains(where: { $0.hostKeyPolicy == .insecureNoCheck }) {
            logger.warning("host key checking is OFF (host_key_policy = \"insecure-no-check\"): anyone on the path can impersonate the bastion", metadata: ["tunnel": "\(tunnel.name)"])
        }
        var launch = SSHLaunch.make(
            ssh: launchTools.ssh, sshConfig: files.sshConfigPath(for: tunnel), alias: tunnel.alias,
            setpriv: launchTools.setpriv, supervisorPid: getpid())
        launch.environment = SSHLaunch.environment(for: tunnel, askpassPath: files.askpassPath(for: tunnel))
        let generation = (generations[tunnel.name] ?? 0) + 1
        generations[tunnel.name] = generation
        let runner = TunnelRunner(
            tunnel: tunnel,
            environment: RunnerEnvironment(
                launch: launch, tunnelDirectory: files.directory(for: tunnel), throttle: throttle,
                logger: logger,
                prepare: { [files, sshBinary = config.sshBinary] in _ = try await files.write(tunnel, sshBinary: sshBinary) },
                onChange: { [weak self] status in await self?.update(status, generation: generation) }))
        runners[tunnel.name] = runner
        await runner.start()
    }

    private func update(_ tunnelStatus: TunnelStatus, generation: Int) async {
        guard generations[tunnelStatus.name] == generation else { return }
        statuses[tunnelStatus.name] = tunnelStatus
        options.hooks.statusesChanged(statuses)
        await status.update(statuses, running: true)
    }

    private func writeStatus(running: Bool = true) async {
        options.hooks.statusesChanged(statuses)
        await status.update(statuses, running: running)
        await status.flush()
    }

    private func stoppedStatus(_ tunnel: TunnelConfig) -> TunnelStatus {
        TunnelStatus(
            name: tunnel.name, state: .stopped, since: Date().formatted(.iso8601), pid: nil, restarts: 0,
            forwards: TunnelStatus.describe(tunnel), lastError: nil, nextRetry: nil)
    }

    /// SIGHUP: re-read the config. Invalid: keep everything running and say why.
    /// Valid: stop removed tunnels, start added ones, restart only changed ones.
    public func reload() async {
        logger.info("reloading \(options.configPath)")
        let new: WarrenConfig
        do {
            new = try Self.loadConfig(options)
        } catch {
            logger.error("the new config is invalid; keeping the running one", metadata: ["errors": "\(error.description)"])
            return
        }
        guard new.stateDir == config.stateDir else {
            logger.error("state_dir changed from \(config.stateDir) to \(new.stateDir); that needs a restart. Keeping the running config")
            return
        }
        let old = Dictionary(uniqueKeysWithValues: selected(config).map { ($0.name, $0) })
        let wanted = Dictionary(uniqueKeysWithValues: selected(new).map { ($0.name, $0) })
        config = new
        var stopped = 0, started = 0, restarted = 0
        for (name, tunnel) in old where wanted[name] != tunnel {
            generations[name, default: 0] += 1
            if let runner = runners.removeValue(forKey: name) { await runner.stop() }
            if wanted[name] == nil {
                stopped += 1
                statuses[name] = new.tunnel(named: name).map(stoppedStatus)
            }
        }
        for (name, tunnel) in wanted.sorted(by: { $0.key < $1.key }) where old[name] != tunnel {
            if old[name] == nil { started += 1 } else { restarted += 1 }
            await startTunnel(tunnel)
        }
        for tunnel in new.tunnels where wanted[tunnel.name] == nil {
            statuses[tunnel.name] = stoppedStatus(tunnel)
        }
        for name in statuses.keys where new.tunnel(named: name) == nil { statuses[name] = nil }
        await writeStatus()
        logger.info("reloaded: \(started) started, \(restarted) restarted, \(stopped) stopped, \(wanted.count - started - restarted) unchanged")
    }

    /// Stops every tunnel (SIGTERM, then SIGKILL after a grace period) and writes the final status.
    public func stopAll() async {
        await withTaskGroup(of: Void.self) { group in
            for runner in runners.values {
                group.addTask { await runner.stop() }
            }
        }
        runners.removeAll()
        await writeStatus(running: false)
        logger.info("stopped")
    }

    /// The runner of a tunnel (tests and benchmarks signal its child).
    public func runner(named name: String) -> TunnelRunner? { runners[name] }
}

/// The programs a supervisor starts.
struct LaunchTools: Sendable {
    var ssh: String
    var setpriv: String?

    static func find(sshBinary: String?) -> LaunchTools {
        LaunchTools(ssh: sshBinary ?? which("ssh") ?? "/usr/bin/ssh", setpriv: which("setpriv"))
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
