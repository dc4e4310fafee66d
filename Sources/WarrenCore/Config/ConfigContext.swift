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
    /// Whether a missing identity file is a config error. `warren doctor` turns
    /// this off so that it can report the missing key as its own step.
    public var requireIdentityFiles: Bool
    /// Whether a pinned endpoint without `host_key` is a config error. `warren
    /// hostkey` turns this off: it is how a user gets the key to pin.
    public var requireHostKeys: Bool
    /// The files an absolute `include` pattern matches, sorted, each with its text
    /// or why it could not be read. The runtime globs and reads; the loader stays pure.
    public var expandInclude: @Sendable (_ pattern: String) -> [IncludedFile] = { _ in [] }
    /// The permission bits of a file (for secret files, which must be 0600), or nil.
    public var fileMode: @Sendable (_ path: String) -> Int? = { _ in nil }
    /// Why a key or secret file cannot be trusted (another user owns it or
    /// could replace it, or a link leads out of its directory), or nil.
    /// `secret`: a password or passphrase file, read at every login.
    public var untrustedFile: @Sendable (_ path: String, _ secret: Bool) -> String? = { _, _ in nil }

    public init(
        configDirectory: String, homeDirectory: String, stateDirOverride: String? = nil,
        defaultStateDir: String, isReadableFile: @escaping @Sendable (String) -> Bool,
        requireIdentityFiles: Bool = true, requireHostKeys: Bool = true
    ) {
        self.configDirectory = configDirectory
        self.homeDirectory = homeDirectory
        self.stateDirOverride = stateDirOverride
        self.defaultStateDir = defaultStateDir
        self.isReadableFile = isReadableFile
        self.requireIdentityFiles = requireIdentityFiles
        self.requireHostKeys = requireHostKeys
    }

    /// Expands `~/` and makes a relative path absolute against the config's directory.
    public func absolutePath(_ path: String) -> String {
        if path == "~" { return homeDirectory }
        if path.hasPrefix("~/") { return homeDirectory + path.dropFirst(1) }
        if path.hasPrefix("/") { return path }
        return configDirectory.hasSuffix("/") ? configDirectory + path : configDirectory + "/" + path
    }

    /// Where `warren keygen` writes a key: `<state_dir>/keys/[<tunnel>/]id_<type>`.
    public static func keyPath(stateDir: String, tunnel: String?, type: KeyType) -> String {
        if let tunnel { return "\(stateDir)/keys/\(tunnel)/\(type.fileName)" }
        return "\(stateDir)/keys/\(type.fileName)"
    }

    /// The key a tunnel without `identity_file` uses: the first that exists of the
    /// tunnel's own keys (`keygen --tunnel NAME`), then the shared ones, Ed25519
    /// before RSA; the shared Ed25519 path when none exists. `warren keygen`
    /// writes to `keyPath`, so what it makes is what this finds.
    public static func defaultIdentityFile(stateDir: String, tunnel: String?, exists: (String) -> Bool) -> String {
        let owners: [String?] = tunnel == nil ? [nil] : [tunnel, nil]
        for owner in owners {
            for type in KeyType.allCases {
                let path = keyPath(stateDir: stateDir, tunnel: owner, type: type)
                if exists(path) { return path }
            }
        }
        return keyPath(stateDir: stateDir, tunnel: nil, type: .ed25519)
    }
}

/// One file matched by an `include` pattern, as the runtime found it.
public struct IncludedFile: Sendable, Equatable {
    /// Absolute path, as printed in messages.
    public var path: String
    /// The file's text; nil when it could not be read (see `problem`).
    public var text: String?
    /// Why the file could not be read ("does not exist", "is not UTF-8 text").
    public var problem: String?

    public init(path: String, text: String?, problem: String? = nil) {
        self.path = path
        self.text = text
        self.problem = problem
    }
}
