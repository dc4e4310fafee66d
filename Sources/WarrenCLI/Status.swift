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
                says which shard it is, and lists the tunnels other shards run as other_shard. Exits 0, or 3 when there is no status \
                (no supervisor has run for this state directory).
                """)

        @OptionGroup var options: GlobalOptions

        @Flag(help: "Print status.json as it is.")
        var json = false

        func run() async throws {
            let stateDir = try resolveStateDir(options)
            let path = "\(stateDir)/status.json"
            guard let data = FileManager.default.contents(atPath: path), let report = try? StatusCoding.decode(data) else {
                printError("warren: no supervisor status at \(path): is `warren run` running for this state directory?")
                throw ExitCode(3)
            }
            if json {
                print(StatusCoding.encode(report), terminator: "")
                return
            }
            printText(StatusTable.render(report, supervisorAlive: ProcessInfoReader.isAlive(report.supervisorPid)))
        }
    }
}

/// The state directory without requiring a valid config: --state-dir, else the
/// config's, else the default.
func resolveStateDir(_ options: GlobalOptions) throws -> String {
    if let explicit = options.stateDir { return explicit }
    if let path = try? Locations.configFile(explicit: options.config), let config = try? ConfigFile.load(path: path) {
        return config.stateDir
    }
    return Locations.defaultStateDir()
}

/// The human table of `warren status`.
enum StatusTable {
    static func render(_ report: StatusReport, supervisorAlive: Bool) -> String {
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
            guard let error = tunnel.lastError else { continue }
            // ssh's (or a server's) words, escaped whole: a newline in them must not make a line of its own.
            out += "\n\(tunnel.name): \(error.kind.rawValue): \(TerminalText.escape(error.message))\n  fix: \(error.hint)\n"
            if let retry = tunnel.nextRetry { out += "  next retry: \(retry)\n" }
        }
        return out
    }

    /// Open connections / total through all forwards, and failed opens if any: `2/57`, `0/3 (1 failed)`.
    static func connections(_ tunnel: TunnelStatus) -> String {
        guard let counts = tunnel.connections, !counts.isEmpty else { return "-" }
        let open = counts.reduce(0) { $0 + $1.open }, total = counts.reduce(0) { $0 + $1.total }
        let failed = counts.reduce(0) { $0 + $1.failed }
        return "\(open)/\(total)" + (failed > 0 ? " (\(failed) failed)" : "")
    }

    /// Another shard's tunnel shows where it runs instead of its forwards.
    private static func forwards(of tunnel: TunnelStatus) -> String {
        guard tunnel.state == .otherShard else { return tunnel.forwards.joined(separator: ", ") }
        return "runs on shard " + (tunnel.shards ?? []).map(String.init).joined(separator: ", ")
    }
}
