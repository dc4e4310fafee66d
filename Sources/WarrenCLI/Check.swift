import ArgumentParser
import Foundation
import WarrenCore
import WarrenRuntime

extension Warren {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One-shot check for cron and monitoring (Nagios/Icinga plugin output and exit codes).",
            discussion: """
                Checks every enabled tunnel (or only the named ones) in parallel and finishes \
                within --timeout. If `warren run` supervises this state directory, its status \
                plus a live connection through each local forward; if not, a one-shot \
                `ssh -W HOST:PORT` per local forward asks the bastion to reach the target \
                (no local port is bound), and the first line says so (`no supervisor; \
                connected directly`); --require-supervisor makes that CRITICAL instead. \
                Without --config (or $WARREN_CONFIG, ./warren.toml), the config is the one \
                the supervisor running for the state directory was started with.

                First line: `WARREN OK - 3/3 tunnels up | up=3 degraded=0 down=0 unknown=0`; \
                then one line per tunnel that is not up, with the failure kind and the fix. \
                Exit 0 OK, 1 WARNING (a target does not answer), 2 CRITICAL (a tunnel is down \
                or failed), 3 UNKNOWN (config unreadable, no status, or no answer in time). \
                --json prints the report described in docs/check-json.md, with the same exit code. \
                With --shard (or $WARREN_SHARD) only that shard's tunnels are checked, and \
                --forward-bind (or $WARREN_FORWARD_BIND) is where their forwards are probed; \
                without them, those of the supervisor running for the state directory.
                """)

        @OptionGroup var options: GlobalOptions
        @OptionGroup(title: "Beyond one machine") var deployment: DeploymentOptions

        @Argument(help: "Tunnels to check (default: every enabled tunnel).")
        var tunnels: [String] = []

        @Flag(help: "Print the report as JSON (schema: docs/check-json.md).")
        var json = false

        @Flag(help: ArgumentHelp(
            "CRITICAL when no supervisor runs for the state directory, instead of connecting directly.",
            discussion: "For monitoring that must know warren keeps the tunnels up, not only that they could come up."))
        var requireSupervisor = false

        @Option(help: ArgumentHelp("The whole check's time bound, seconds.", discussion: "Keep it above the tunnels' connect_timeout and below your cron or monitoring interval.", valueName: "S"))
        var timeout: Double = 20

        func validate() throws {
            guard timeout > 0, timeout <= 3600 else { throw ValidationError("--timeout must be between 0 and 3600 seconds") }
        }

        func run() async throws {
            let started = ContinuousClock.now
            let report = await check(started: started)
            if json {
                print(CheckCoding.encode(report), terminator: "")
            } else {
                printText(report.pluginText)
            }
            if report.exitCode != 0 { throw ExitCode(report.exitCode) }
        }

        private func check(started: ContinuousClock.Instant) async -> CheckReport {
            let checkedAt = Date().formatted(.iso8601)
            func unknown(_ message: String, config: String?, stateDir: String?) -> CheckReport {
                .unknown(message, checkedAt: checkedAt, elapsedSeconds: (ContinuousClock.now - started) / .seconds(1), configFile: config, stateDir: stateDir)
            }
            let path: String
            let config: WarrenConfig
            do {
                path = try Locations.configFile(explicit: options.config, supervisedStateDir: options.stateDir ?? Locations.defaultStateDir())
            } catch {
                return unknown("cannot find the config: \(error)", config: nil, stateDir: options.stateDir)
            }
            let shard: ShardSpec?
            do {
                let loaded = try ConfigFile.load(path: path, stateDirOverride: options.stateDir)
                // Unless told, the shard and forward address of the supervisor running
                // for the state directory: check what it runs, where it listens.
                let live = SupervisorPresence.look(stateDir: loaded.stateDir).liveReport
                shard = try deployment.resolvedShard() ?? live?.shard
                let bind = try deployment.bind() ?? live?.forwardBind.flatMap { try? ForwardBind.parse($0).get() }
                config = try loaded.deployed(shard: shard, bind: bind)
            } catch let error as ConfigError {
                return unknown("the config cannot be used:\n\(error.description)", config: path, stateDir: options.stateDir)
            } catch {
                return unknown("\(error)", config: path, stateDir: options.stateDir)
            }
            let unknownNames = tunnels.filter { config.tunnel(named: $0) == nil }
            if !unknownNames.isEmpty {
                let names = config.tunnels.map(\.name).joined(separator: ", ")
                return unknown("no tunnel named \(unknownNames.map { TerminalText.escape($0) }.joined(separator: ", ")) in \(path); tunnels: \(names)", config: path, stateDir: config.stateDir)
            }
            // With --shard, only this shard's tunnels, unless they are named.
            let selected = tunnels.isEmpty
                ? config.tunnels.filter { $0.enabled && shard?.runs($0) != false } : config.tunnels.filter { tunnels.contains($0.name) }
            // A shard may own no tunnel (more shards than tunnels): that is OK, not UNKNOWN.
            guard !selected.isEmpty || (shard != nil && tunnels.isEmpty) else {
                return unknown("no enabled tunnels in \(path)", config: path, stateDir: config.stateDir)
            }
            let left = timeout - (ContinuousClock.now - started) / .seconds(1)
            return await Checker(config: config, tunnels: selected, templatesDirectory: options.templates, timeout: left, requireSupervisor: requireSupervisor).run()
        }
    }
}
