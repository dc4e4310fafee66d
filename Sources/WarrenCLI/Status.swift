import ArgumentParser
import Foundation
import WarrenCore
import WarrenRuntime

extension Warren {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what the running supervisor reports.",
            discussion: """
                Reads <state_dir>/status.json: each tunnel's state, since when, restarts, \
                forwards and last error with its hint. A supervisor started with --shard \
                says which shard it is, and lists the tunnels other shards run as other_shard. Exits 0, \
                or 3 when there is no status (no supervisor has run for this state directory), or 78 \
                when there is none and the config is invalid (its errors are printed: the state \
                directory may be wrong).
                """)

        @OptionGroup var options: GlobalOptions

        @Flag(help: "Print status.json as it is.")
        var json = false

        func run() async throws {
            let (stateDir, config, configProblem) = stateDirAndConfig(options)
            let path = "\(stateDir)/status.json"
            guard let data = FileManager.default.contents(atPath: path), let report = try? StatusCoding.decode(data) else {
                if let configProblem, options.stateDir == nil {
                    // The state directory comes from the config: a broken config is the
                    // likelier reason than a supervisor that never ran.
                    throw CommandFailure(
                        "\(configProblem.description)\nwarren: the config is invalid (above), so the state directory it names is uncertain; no supervisor status at \(path)",
                        exit: ExitCodes.config)
                }
                throw CommandFailure("warren: no supervisor status at \(path): is `warren run` running for this state directory?", exit: 3)
            }
            if let configProblem {
                printError("warning: \(configProblem.file) is invalid (`warren validate` lists why); showing the status in \(stateDir)")
            }
            if json {
                print(StatusCoding.encode(report), terminator: "")
                return
            }
            let alive = ProcessInfoReader.isAlive(report.supervisorPid)
            printText(StatusTable.render(report, supervisorAlive: alive, config: config, portHolders: alive ? portHolders(report, config) : [:]))
        }
    }
}

/// For each tunnel the running supervisor reports as `local_port_in_use`, who
/// holds its ports (not the supervisor, not the tunnel's ssh).
func portHolders(_ report: StatusReport, _ config: WarrenConfig?) -> [String: [String]] {
    var out: [String: [String]] = [:]
    for status in report.tunnels where status.lastError?.kind == .localPortInUse {
        guard let tunnel = config?.tunnel(named: status.name) else { continue }
        out[status.name] = PortHolders.describe(tunnel, excluding: Set([report.supervisorPid] + [status.pid].compactMap { $0 }))
    }
    return out
}

/// The state directory, the config when it loads, and why when it does not:
/// --state-dir, else the config's (read leniently from an invalid file), else the default.
/// Without --config, $WARREN_CONFIG or ./warren.toml, the config is the one the
/// supervisor running for that state directory names, from any directory.
func stateDirAndConfig(_ options: GlobalOptions) -> (String, WarrenConfig?, ConfigError?) {
    let supervised = options.stateDir ?? Locations.defaultStateDir()
    guard let path = try? Locations.configFile(explicit: options.config, supervisedStateDir: supervised) else {
        return (options.stateDir ?? Locations.defaultStateDir(), nil, nil)
    }
    do {
        let config = try ConfigFile.load(path: path, stateDirOverride: options.stateDir, requireIdentityFiles: false, requireHostKeys: false)
        return (config.stateDir, config, nil)
    } catch {
        return (options.stateDir ?? ConfigFile.stateDir(path: path, stateDirOverride: nil), nil, error)
    }
}

/// The human table of `warren status`.
enum StatusTable {
    /// With `config`, each fix names the tunnel's real values (the failing host, ports, targets).
    /// `portHolders`: per tunnel, who holds its local ports (`PortHolders`).
    static func render(_ report: StatusReport, supervisorAlive: Bool, config: WarrenConfig? = nil, portHolders: [String: [String]] = [:]) -> String {
        var out = ""
        let header = report.running && supervisorAlive
            ? "supervisor pid \(report.supervisorPid), config \(report.configFile), updated \(report.updatedAt)"
            : "supervisor not running (last pid \(report.supervisorPid), last update \(report.updatedAt))"
        out += header + (report.shard.map { "\nshard \($0) (\($0.index + 1) of \($0.count)): other_shard tunnels run on the shards listed" } ?? "") + "\n"
        let rows = [["TUNNEL", "STATE", "SINCE", "RESTARTS", "CONNS", "FORWARDS"]]
            + report.tunnels.map { [$0.name, $0.state.rawValue, $0.since, "\($0.restarts)", connections($0), forwards(of: $0)] }
        let widths = (0..<6).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            out += row.enumerated().map { $0.offset == 5 ? $0.element : $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ") + "\n"
        }
        for tunnel in report.tunnels where tunnel.hostKeyChecked == false {
            out += "\nwarning: \(tunnel.name): host keys are not checked (host_key_policy = \"insecure-no-check\"): anyone on the path can impersonate the bastion\n"
        }
        for tunnel in report.tunnels {
            out += credentials(tunnel)
        }
        for tunnel in report.tunnels {
            if let idle = tunnel.idleClose { out += "\n\(tunnel.name): idle close: \(idle.note)\n" }
            guard let error = tunnel.lastError else { continue }
            let hint = config?.tunnel(named: tunnel.name).map {
                error.kind.hint(in: HintContext(tunnel: $0, message: error.message, defaultUser: ProcessInfo.processInfo.userName))
            } ?? error.hint
            // ssh's (or a server's) words, escaped whole: a newline in them must not make a line of its own.
            out += "\n\(tunnel.name): \(error.kind.rawValue): \(TerminalText.escape(error.message))\n"
            for holder in portHolders[tunnel.name] ?? [] { out += "  port \(holder)\n" }
            out += "  fix: \(hint)\n"
            if let retry = tunnel.nextRetry { out += "  next retry: \(retry)\n" }
        }
        return out
    }

    /// The key (fingerprint, age) and a renewed certificate (validity, last renewal), one line each.
    static func credentials(_ tunnel: TunnelStatus) -> String {
        guard let credentials = tunnel.credentials else { return "" }
        var out = ""
        if let key = credentials.key {
            var line = "\(tunnel.name): key \(key.fingerprint ?? "(no .pub)") \(key.file)"
            if let created = key.created, let date = try? Date(created, strategy: .iso8601) {
                line += ", \(Int(Date().timeIntervalSince(date) / 86400)) days old (made \(created))"
            }
            if let next = key.next { line += "; next key \(next) waits for `warren rotate \(tunnel.name)`" }
            out += line + "\n"
        }
        if let certificate = credentials.certificate {
            var line = "\(tunnel.name): certificate \(certificate.file)"
            line += certificate.validBefore.map { " valid until \($0)" } ?? " (none valid)"
            if let next = certificate.nextRenewal { line += ", renewed next at \(next)" }
            if let last = certificate.lastRenewal {
                line += last.ok ? "; last renewal \(last.at) OK" : "; last renewal \(last.at) FAILED: \(TerminalText.escape(last.message))"
            }
            out += line + "\n"
        }
        return out.isEmpty ? "" : "\n" + out
    }

    /// Open client connections / total through all forwards, then what is
    /// not zero of failed opens, connections that waited for ssh and those
    /// dropped unserved: `2/57`, `0/3 (1 failed, 4 waited)`. Probes are not clients.
    static func connections(_ tunnel: TunnelStatus) -> String {
        guard let counts = tunnel.connections, !counts.isEmpty else { return "-" }
        func sum(_ value: KeyPath<ForwardConnections, Int>) -> Int { counts.reduce(0) { $0 + $1[keyPath: value] } }
        let extras = [(sum(\.failed), "failed"), (sum(\.waited), "waited"), (sum(\.dropped), "dropped")].filter { $0.0 > 0 }
        return "\(sum(\.open))/\(sum(\.total))" + (extras.isEmpty ? "" : " (" + extras.map { "\($0.0) \($0.1)" }.joined(separator: ", ") + ")")
    }

    /// Another shard's tunnel shows where it runs instead of its forwards.
    private static func forwards(of tunnel: TunnelStatus) -> String {
        guard tunnel.state == .otherShard else { return tunnel.forwards.joined(separator: ", ") }
        return "runs on shard " + (tunnel.shards ?? []).map(String.init).joined(separator: ", ")
    }
}
