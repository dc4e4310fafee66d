import ArgumentParser
import Foundation
import Logging
import WarrenCore
import WarrenRuntime

extension Warren {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Supervise the tunnels in the foreground until SIGTERM or SIGINT.",
            discussion: """
                Runs `ssh -N` for every enabled tunnel (or only the named ones), restarts a \
                child that exits with exponential backoff, probes each target through its \
                forward, and keeps <state_dir>/status.json current (see `warren status`). \
                One log line per state change, with the failure kind and what to do about it.

                SIGUSR1 (`warren retry`) starts tunnels in backoff or failed at once. \
                SIGHUP re-reads the config: an invalid one is logged and the running tunnels \
                stay as they are; otherwise only added, removed and changed tunnels are touched. \
                SIGTERM/SIGINT stop every ssh child and write the final status; exit 0. \
                An invalid config at start exits 78.

                With --shard I/N only this shard's tunnels run (`warren where` shows which); \
                status lists the others as other_shard. --forward-bind moves every local and \
                dynamic forward to one address (0.0.0.0 in a pod).

                Under systemd (Type=notify, see Templates/warren.service) it reports on \
                $NOTIFY_SOCKET: READY=1 once every tunnel has settled (is up, or its first attempt \
                failed) or --ready-timeout has passed, RELOADING=1 and READY=1 \
                around a reload, STOPPING=1, and WATCHDOG=1 every WATCHDOG_USEC/2.
                """)

        @OptionGroup var options: GlobalOptions

        @Argument(help: "Tunnels to run (default: every enabled tunnel).")
        var tunnels: [String] = []

        @Option(help: "Log level: trace, debug, info, notice, warning, error. debug shows ssh's own lines.")
        var logLevel: String = "info"

        @Option(help: "Log format: text or json.")
        var logFormat: String = "text"

        @Option(help: "Connection attempts in flight at once to any one bastion, so many tunnels to one sshd stay under its MaxStartups.")
        var maxStarting: Int = 8

        @Option(help: ArgumentHelp("Connection attempts in flight at once in all, over every bastion (default: 64 per CPU).", valueName: "N"))
        var maxStartingTotal: Int?

        @Option(help: ArgumentHelp("Seconds to wait for every tunnel to settle (up, or its first attempt failed) before telling systemd READY=1.", valueName: "SECONDS"))
        var readyTimeout: Double = 60
        @OptionGroup(title: "Beyond one machine") var deployment: DeploymentOptions

        @OptionGroup(title: "Monitoring") var monitoring: MonitoringOptions

        func validate() throws {
            guard Logger.Level(rawValue: logLevel) != nil else {
                throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
            }
            guard LogFormat(rawValue: logFormat) != nil else { throw ValidationError("--log-format must be text or json") }
            guard maxStarting >= 1 else { throw ValidationError("--max-starting must be at least 1") }
            guard (maxStartingTotal ?? 1) >= 1 else { throw ValidationError("--max-starting-total must be at least 1") }
            guard readyTimeout > 0, readyTimeout <= 3600 else { throw ValidationError("--ready-timeout must be between 0 and 3600 seconds") }
        }

        func run() async throws {
            WarrenLogHandler.bootstrap(level: Logger.Level(rawValue: logLevel)!, format: LogFormat(rawValue: logFormat)!)
            var logger = Logger(label: "warren")
            let shard: ShardSpec?
            do {
                shard = try deployment.resolvedShard()
            } catch {
                throw CommandFailure("warren: \(error)", exit: ExitCodes.config)
            }
            // Every line says which shard wrote it, for logs collected from many replicas.
            if let shard { logger[metadataKey: "shard"] = "\(shard)" }
            // A thousand tunnels need about three thousand descriptors.
            OpenFileLimit.raiseToHard()
            // Signals are routed before any child exists, so none is lost.
            let signals = SignalSource([SIGTERM, SIGINT, SIGHUP, RetryRequest.signal])
            let path: String
            do {
                path = try Locations.configFile(explicit: options.config)
            } catch {
                throw CommandFailure("warren: \(error)", exit: ExitCodes.config)
            }
            let supervisor: Supervisor
            let monitor = Monitor(monitoring, shard: shard, configPath: path, stateDirOverride: options.stateDir)
            do {
                var supervisorOptions = Supervisor.Options(
                    configPath: path, stateDirOverride: options.stateDir, templatesDirectory: options.templates,
                    only: tunnels, maxStarting: maxStarting, logger: logger)
                supervisorOptions.hooks = monitor.hooks
                supervisorOptions.readyTimeout = readyTimeout
                supervisorOptions.maxStartingTotal = maxStartingTotal ?? StartThrottle.defaultLimit()
                supervisorOptions.shard = shard
                supervisorOptions.forwardBind = try? deployment.bind()
                supervisor = try await Supervisor(options: supervisorOptions)
            } catch {
                switch error {
                case .config, .unknownTunnels: throw CommandFailure(error.description, exit: ExitCodes.config)
                case .setup: throw CommandFailure(error.description, exit: 1)
                }
            }
            do {
                try monitor.start(monitoring, supervisor: supervisor, logger: logger)
            } catch {
                throw CommandFailure("warren: \(error)", exit: 1)
            }
            await supervisor.run(signals: signals.signals)
            monitor.finish()
        }
    }
}
