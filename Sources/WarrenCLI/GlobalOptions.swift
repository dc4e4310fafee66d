import ArgumentParser
import Foundation
import WarrenCore
import WarrenRuntime

/// Options every command that reads the config takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The config file.", discussion: "Else $WARREN_CONFIG, else ./warren.toml, else (status, check) the config of the supervisor running for the state directory, else /etc/warren/warren.toml.", valueName: "FILE"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Where generated files, keys and status live.", discussion: "Else the config's state_dir, else /var/lib/warren (root) or ~/.local/state/warren. It must be owned by you or root and not group- or world-writable; a missing one is created 0700.", valueName: "DIR"))
    var stateDir: String?

    @Option(name: .long, help: ArgumentHelp("A directory of templates to use instead of warren's own.", valueName: "DIR"))
    var templates: String?

    /// Finds and validates the config; on failure prints every issue and exits 78 (EX_CONFIG).
    /// `requireHostKeys: false` accepts a tunnel that has no host_key yet (`warren hostkey`).
    func loadConfig(requireHostKeys: Bool = true) throws -> WarrenConfig {
        do {
            let path = try Locations.configFile(explicit: config)
            return try ConfigFile.load(path: path, stateDirOverride: stateDir, requireHostKeys: requireHostKeys)
        } catch let error as ConfigError {
            throw CommandFailure(error.description, exit: ExitCodes.config)
        } catch {
            throw CommandFailure("warren: \(error)", exit: ExitCodes.config)
        }
    }

    /// The writer of generated files for this config.
    func tunnelFiles(for config: WarrenConfig) throws -> TunnelFiles {
        do {
            let directory = try Locations.templatesDirectory(explicit: templates, fromConfig: config.templatesDir)
            return try TunnelFiles(templatesDirectory: directory, stateDir: config.stateDir, configFile: config.file, sshBinary: config.sshBinary)
        } catch {
            throw CommandFailure("warren: \(error)", exit: ExitCodes.config)
        }
    }
}

/// Exit statuses that scripts rely on.
enum ExitCodes {
    /// sysexits EX_CONFIG: the config is invalid.
    static let config: Int32 = 78
}

/// Prints a message on stderr. Values from outside in it were escaped where
/// they were put in; this escapes whatever else a terminal would act on.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((TerminalText.escape(message, keepingLines: true) + "\n").utf8))
}

/// Prints a report on stdout (no newline added), escaped like `printError`.
func printText(_ text: String) {
    print(TerminalText.escape(text, keepingLines: true), terminator: "")
}

/// Looks a tunnel up by name, or prints the names there are and exits 78.
func requireTunnel(_ name: String, in config: WarrenConfig) throws -> TunnelConfig {
    guard let tunnel = config.tunnel(named: name) else {
        let names = config.tunnels.map(\.name).joined(separator: ", ")
        throw CommandFailure("\(config.file): no tunnel named \"\(TerminalText.escape(name))\"; tunnels: \(names)", exit: ExitCodes.config)
    }
    return tunnel
}
