/// What config loading needs to know about the machine: where relative paths
/// start, the home directory, the state directory override and how to ask
/// whether a file exists. Passed in, so that the loader stays testable.
public struct ConfigContext: Sendable {
    /// Relative paths in the file are resolved against this directory.
    public var configDirectory: String
    public var homeDirectory: String
    /// `--state-dir`, which wins over the file's `state_dir`.
    public var stateDirOverride: String?
    /// Used when neither `--state-dir` nor `state_dir` is given.
    public var defaultStateDir: String
    /// Whether a readable regular file exists at the path.
    public var isReadableFile: @Sendable (String) -> Bool

    public init(
        configDirectory: String, homeDirectory: String, stateDirOverride: String? = nil,
        defaultStateDir: String, isReadableFile: @escaping @Sendable (String) -> Bool
    ) {
        self.configDirectory = configDirectory
        self.homeDirectory = homeDirectory
        self.stateDirOverride = stateDirOverride
        self.defaultStateDir = defaultStateDir
        self.isReadableFile = isReadableFile
    }

    /// Expands `~/` and makes a relative path absolute against the config's directory.
    public func absolutePath(_ path: String) -> String {
        if path == "~" { return homeDirectory }
        if path.hasPrefix("~/") { return homeDirectory + path.dropFirst(1) }
        if path.hasPrefix("/") { return path }
        return configDirectory.hasSuffix("/") ? configDirectory + path : configDirectory + "/" + path
    }

    /// The key `warren keygen` creates and a tunnel without `identity_file` uses:
    /// the tunnel's own (`keygen --tunnel NAME`) if it exists, else the shared one.
    public static func defaultIdentityFile(stateDir: String, tunnel: String?, exists: (String) -> Bool) -> String {
        if let tunnel {
            let own = "\(stateDir)/keys/\(tunnel)/id_ed25519"
            if exists(own) { return own }
        }
        return "\(stateDir)/keys/id_ed25519"
    }
}
