import Foundation
import WarrenCore

/// Reads and validates a config file from disk.
public enum ConfigFile {
    /// Loads `path`. Every problem, including an unreadable file, comes back as a `ConfigError`.
    /// - Parameters:
    ///   - requireIdentityFiles: false lets a missing key file through (`warren doctor`
    ///     reports it as a step of its own).
    ///   - requireHostKeys: false lets a pinned tunnel without `host_key` through
    ///     (`warren hostkey` prints the key to pin; `doctor` reports it at its host key step).
    public static func load(
        path: String, stateDirOverride: String? = nil, requireIdentityFiles: Bool = true, requireHostKeys: Bool = true
    ) throws(ConfigError) -> WarrenConfig {
        let text = try read(path)
        var context = context(path: path, stateDirOverride: stateDirOverride, requireIdentityFiles: requireIdentityFiles)
        context.requireHostKeys = requireHostKeys
        return try ConfigLoader(context: context).load(text: text, file: path)
    }

    /// The state directory for `path` (which may be invalid or absent): see `ConfigLoader.stateDirOnly`.
    public static func stateDir(path: String?, stateDirOverride: String?) -> String {
        let text = path.flatMap { try? read($0) } ?? ""
        return ConfigLoader(context: context(path: path ?? "./warren.toml", stateDirOverride: stateDirOverride, requireIdentityFiles: false))
            .stateDirOnly(text: text)
    }

    /// A regular file this user can read. Anything else named where a file is
    /// wanted (a key, an included config) is refused: a FIFO would hang the
    /// reader (ssh, or `warren run` with it) and a device such as /dev/zero
    /// never ends.
    static func isRegularReadableFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG && access(path, R_OK) == 0
    }

    private static func read(_ path: String) throws(ConfigError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read (permissions?)" : "does not exist"
            throw ConfigError(file: path, issues: [ConfigIssue(path: "", message: "the config file \(reason)")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, issues: [ConfigIssue(path: "", message: "the config file is not UTF-8 text")])
        }
        return text
    }

    private static func context(path: String, stateDirOverride: String?, requireIdentityFiles: Bool) -> ConfigContext {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var context = ConfigContext(
            configDirectory: directory, homeDirectory: Locations.homeDirectory(),
            stateDirOverride: stateDirOverride, defaultStateDir: Locations.defaultStateDir(),
            isReadableFile: isRegularReadableFile,
            requireIdentityFiles: requireIdentityFiles)
        context.expandInclude = { pattern in IncludeGlob.files(matching: pattern) }
        context.untrustedFile = { path, secret in
            TrustedFile.problem(path, limit: secret ? TrustedFile.secretLimit : .max, secret: secret)?.reason
        }
        context.fileMode = { path in
            var info = stat()
            return stat(path, &info) == 0 ? Int(info.st_mode & 0o7777) : nil
        }
        return context
    }
}
