import Foundation
import WarrenCore

/// Reads and validates a config file from disk.
public enum ConfigFile {
    /// Loads `path`. Every problem, including an unreadable file, comes back as a `ConfigError`.
    public static func load(path: String, stateDirOverride: String? = nil) throws(ConfigError) -> WarrenConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read (permissions?)" : "does not exist"
            throw ConfigError(file: path, issues: [ConfigIssue(path: "", message: "the config file \(reason)")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, issues: [ConfigIssue(path: "", message: "the config file is not UTF-8 text")])
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let context = ConfigContext(
            configDirectory: directory, homeDirectory: Locations.homeDirectory(),
            stateDirOverride: stateDirOverride, defaultStateDir: Locations.defaultStateDir(),
            isReadableFile: { path in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
                    && !isDirectory.boolValue && access(path, R_OK) == 0
            })
        return try ConfigLoader(context: context).load(text: text, file: path)
    }
}
