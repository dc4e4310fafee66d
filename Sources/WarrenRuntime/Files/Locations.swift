import Foundation
import WarrenCore

/// Where warren finds its config, state directory and templates on this machine.
public enum Locations {
    /// `--config`, else `$WARREN_CONFIG`, else `./warren.toml`, else (given
    /// `supervisedStateDir`) the config of the supervisor running for that state
    /// directory, as its status.json names it, else `/etc/warren/warren.toml`.
    public static func configFile(
        explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment, supervisedStateDir: String? = nil
    ) throws(LocationError) -> String {
        if let explicit { return explicit }
        if let fromEnv = environment["WARREN_CONFIG"], !fromEnv.isEmpty { return fromEnv }
        if FileManager.default.fileExists(atPath: "./warren.toml") { return "./warren.toml" }
        if let stateDir = supervisedStateDir, let running = supervisorConfig(stateDir: stateDir) { return running }
        if FileManager.default.fileExists(atPath: "/etc/warren/warren.toml") { return "/etc/warren/warren.toml" }
        let supervisor = supervisedStateDir.map { "the config of a supervisor running for \($0), " } ?? ""
        throw LocationError(
            message: "no config file found: looked for --config, $WARREN_CONFIG, ./warren.toml, \(supervisor)and /etc/warren/warren.toml; see README.md for an example")
    }

    /// The absolute config path in the status of the supervisor running for
    /// `stateDir`, when one runs and the file is there.
    static func supervisorConfig(stateDir: String) -> String? {
        guard let path = SupervisorPresence.look(stateDir: stateDir).liveReport?.configFile, path.hasPrefix("/"),
            FileManager.default.fileExists(atPath: path)
        else { return nil }
        return path
    }

    /// `path` made absolute against the working directory (`./warren.toml` ->
    /// `/home/me/proj/warren.toml`), so that it means the same from anywhere.
    public static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true))
            .standardizedFileURL.path
    }

    /// /var/lib/warren for root; `$XDG_STATE_HOME/warren` or `~/.local/state/warren` otherwise.
    public static func defaultStateDir(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if geteuid() == 0 { return "/var/lib/warren" }
        if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") { return "\(xdg)/warren" }
        return "\(homeDirectory(environment: environment))/.local/state/warren"
    }

    public static func homeDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        environment["HOME"] ?? NSHomeDirectory()
    }

    /// `--templates`, else the config's `templates_dir`, else `$WARREN_TEMPLATES`,
    /// else `<prefix>/share/warren/templates` beside the installed binary, else,
    /// for a development build only, `Templates/` of the source tree whose
    /// `.build` holds the binary. Never any other directory above the binary:
    /// whoever can write there could plant an ssh_config template (with a
    /// ProxyCommand warren would run).
    public static func templatesDirectory(explicit: String?, fromConfig: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws(LocationError) -> String {
        if let explicit { return explicit }
        if let fromConfig { return fromConfig }
        if let fromEnv = environment["WARREN_TEMPLATES"], !fromEnv.isEmpty { return fromEnv }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0] : Bundle.main.executablePath ?? CommandLine.arguments[0]).resolvingSymlinksInPath()
        let directory = executable.deletingLastPathComponent()
        let installed = directory.deletingLastPathComponent().appendingPathComponent("share/warren/templates")
        if isTemplatesDirectory(installed.path) { return installed.path }
        if let tree = sourceTree(ofBuiltBinary: executable.path) {
            let candidate = "\(tree)/Templates"
            if isTemplatesDirectory(candidate) { return candidate }
        }
        throw LocationError(
            message: "cannot find warren's templates: install with `make install`, or point --templates, templates_dir or $WARREN_TEMPLATES at a directory holding \(TunnelRenderer.sshConfigTemplate)")
    }

    /// The source tree a binary was built in: the directory that holds the
    /// `.build` the binary is in, when it is a Swift package (Package.swift).
    static func sourceTree(ofBuiltBinary path: String) -> String? {
        guard let range = path.range(of: "/.build/", options: .backwards) else { return nil }
        let tree = String(path[..<range.lowerBound])
        return FileManager.default.fileExists(atPath: "\(tree)/Package.swift") ? tree : nil
    }

    private static func isTemplatesDirectory(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(path)/\(TunnelRenderer.sshConfigTemplate)")
    }

    /// A tunnel's own directory of generated files.
    public static func tunnelDirectory(stateDir: String, tunnel: String) -> String {
        "\(stateDir)/tunnels/\(tunnel)"
    }
}

public struct LocationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
