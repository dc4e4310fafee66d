/// Turns config file text into a validated `WarrenConfig`, or every issue in it.
public struct ConfigLoader: Sendable {
    public var context: ConfigContext

    public init(context: ConfigContext) {
        self.context = context
    }

    static let topKeys = ["state_dir", "templates_dir", "ssh_binary", "include", "defaults", "tunnels"]
    static let inheritableKeys = [
        "port", "user", "identity_file", "host_key_policy", "keepalive_interval",
        "keepalive_count", "connect_timeout", "backoff_min", "backoff_max", "probe_interval",
        "allowed_from", "share_connection", "replicas", "identity_agent", "certificate_file", "password_file", "passphrase_file",
        "allow_public_socks", "certificate_command", "key_max_age_days",
    ]
    /// `[defaults]` may also name the bastion most tunnels share.
    static let defaultsKeys = inheritableKeys + ["host", "host_key"]
    static let tunnelKeys =
        inheritableKeys + [
            "host", "host_key", "local_forward", "remote_forward", "dynamic_forward", "jump", "enabled",
        ]
    static let jumpKeys = ["host", "port", "user", "identity_file", "host_key", "host_key_policy"]

    /// Parses and validates the main file and every file its `include` patterns
    /// match. Throws `ConfigError` with every issue found, each naming its file.
    public func load(text: String, file: String) throws(ConfigError) -> WarrenConfig {
        if let issue = configPathIssue(file) { throw ConfigError(file: file, issues: [issue]) }
        let root: [String: TOMLNode]
        do {
            root = try TOMLNode.parse(text)
        } catch {
            throw ConfigError(file: file, issues: [error])
        }
        let log = IssueLog()
        let top = TableReader(prefix: "", table: root, log: log)
        top.rejectUnknownKeys(allowed: Self.topKeys, context: "the top level")

        let stateDir = resolveStateDir(top)
        let templatesDir = top.string("templates_dir").flatMap { checkedPath($0, at: top.path("templates_dir"), log) }
        let sshBinary = top.string("ssh_binary").flatMap { checkedPath($0, at: top.path("ssh_binary"), log) }

        let defaults = top.table("defaults") ?? TableReader(prefix: "defaults", table: [:], log: log)
        defaults.rejectUnknownKeys(allowed: Self.defaultsKeys, context: "[defaults]")
        let inherited = readDefaults(defaults, stateDir: stateDir)

        let sources = [TunnelSource(file: file, text: text, tunnels: top.table("tunnels"), isMain: true)] + readIncludes(top)
        let (unsorted, origins) = readTunnels(from: sources, inherited: inherited, stateDir: stateDir, log: log)
        let tunnels = unsorted.sorted { $0.name < $1.name }
        if tunnels.isEmpty && log.issues.isEmpty {
            let where_ = sources.count > 1 ? " (in this file or the files include matched)" : ""
            log.add("tunnels", "no tunnels are defined\(where_); add a [tunnels.NAME] table with host, host_key and local_forward")
        }
        Self.checkLocalListeners(tunnels, origins: origins, log)
        guard log.issues.isEmpty else { throw ConfigError(file: file, issues: log.issues) }
        return WarrenConfig(
            file: file, stateDir: stateDir, templatesDir: templatesDir, sshBinary: sshBinary,
            tunnels: tunnels)
    }

    /// The state directory a config names, read without validating anything
    /// else: `--state-dir`, else a usable `state_dir`, else the default. For
    /// `warren keygen`, which must work before the config is valid (a tunnel
    /// without a key is invalid until keygen has run).
    public func stateDirOnly(text: String) -> String {
        if let override = context.stateDirOverride, ValueRules.pathReason(context.absolutePath(override)) == nil {
            return context.absolutePath(override)
        }
        if let root = try? TOMLNode.parse(text), case .string(let value)? = root["state_dir"],
            ValueRules.pathReason(context.absolutePath(value)) == nil
        {
            return context.absolutePath(value)
        }
        return context.defaultStateDir
    }

    private func resolveStateDir(_ top: TableReader) -> String {
        // The file's value is checked even when --state-dir overrides it.
        let fromFile = top.string("state_dir").flatMap { checkedPath($0, at: top.path("state_dir"), top.log) }
        if let override = context.stateDirOverride {
            return checkedPath(override, at: "--state-dir", top.log) ?? context.defaultStateDir
        }
        if let fromFile { return fromFile }
        if top.table["state_dir"] == nil, let reason = ValueRules.pathReason(context.defaultStateDir) {
            // The default is built from $HOME or $XDG_STATE_HOME, which the file does not control.
            top.log.add(
                "state_dir",
                "not set, and the default state directory \"\(TerminalText.escape(context.defaultStateDir))\" (from $XDG_STATE_HOME or $HOME) \(reason); set state_dir or --state-dir to a path without it")
        }
        return context.defaultStateDir
    }

    /// Validates a path value, makes it absolute, and validates the result:
    /// the config's directory or $HOME it was joined to may hold what the
    /// value may not (a newline would end the line in ssh_config).
    func checkedPath(_ value: String, at path: String, _ log: IssueLog) -> String? {
        if let reason = ValueRules.pathReason(value) {
            log.add(path, "path \"\(TerminalText.escape(value))\" \(reason)")
            return nil
        }
        let absolute = context.absolutePath(value)
        if let reason = ValueRules.pathReason(absolute) {
            let base = value.hasPrefix("~") ? "the home directory" : "the config file's directory"
            log.add(
                path,
                "path \"\(TerminalText.escape(value))\" becomes \"\(TerminalText.escape(absolute))\" (relative to \(base)), which \(reason); give an absolute path without it")
            return nil
        }
        return absolute
    }

    /// The config file's own path is printed into every ssh_config warren
    /// writes, so it passes the same rules as a path in it.
    func configPathIssue(_ file: String) -> ConfigIssue? {
        guard let reason = ValueRules.pathReason(context.absolutePath(file)) else { return nil }
        return ConfigIssue(path: "", message: "the config file's path \(reason); move the file to a path without it")
    }

    /// Settings a tunnel may take from `[defaults]`.
    struct Inheritable {
        /// `[defaults]` only: the shared bastion, and its pins (used by tunnels that keep that host).
        var host: String?
        var hostPins: (keys: [HostKey], fingerprints: [HostKeyFingerprint])?
        var port: Int?
        var user: String?
        var identityFile: String?
        var identityFilePath: String?
        var hostKeyPolicy: HostKeyPolicy?
        var keepaliveInterval: Int?
        var keepaliveCount: Int?
        var connectTimeout: Int?
        var backoffMin: Double?
        var backoffMax: Double?
        var probeInterval: Int?
        var allowedFrom: [String]?
        var shareConnection: Bool?
        var allowPublicSocks: Bool?
        var replicas: (value: Int, path: String)?
        var keyMaxAgeDays: Int?
        var login = LoginMethod()
    }

    func readInheritable(_ r: TableReader, stateDir: String, tunnelName: String?) -> Inheritable {
        var out = Inheritable()
        out.port = r.int("port", in: 1...65535)
        if let user = r.string("user") {
            if let reason = ValueRules.userReason(user) {
                r.log.add(r.path("user"), "user \"\(TerminalText.escape(user))\" \(reason)")
            } else {
                out.user = user
            }
        }
        if let file = r.string("identity_file") {
            out.identityFile = checkedPath(file, at: r.path("identity_file"), r.log)
            out.identityFilePath = r.path("identity_file")
            if let path = out.identityFile, context.requireIdentityFiles, !context.isReadableFile(path) {
                r.log.add(
                    r.path("identity_file"),
                    "identity file \(path) does not exist, is not readable or is not a regular file (a FIFO or a device is no key); create a key with `warren keygen` or fix the path")
                out.identityFile = nil
            } else if let path = out.identityFile, context.requireIdentityFiles, let why = context.untrustedFile(path, false) {
                r.log.add(r.path("identity_file"), "identity file \(path) \(why)")
                out.identityFile = nil
            }
        }
        if let policy = r.string("host_key_policy") {
            if let parsed = HostKeyPolicy(rawValue: policy) {
                out.hostKeyPolicy = parsed
            } else {
                r.log.add(
                    r.path("host_key_policy"),
                    "\"\(TerminalText.escape(policy))\" is not a policy; allowed: \"pinned\", \"accept-new\", \"insecure-no-check\"")
            }
        }
        out.keepaliveInterval = r.int("keepalive_interval", in: 1...86400, unit: " seconds")
        out.keepaliveCount = r.int("keepalive_count", in: 1...1000)
        out.connectTimeout = r.int("connect_timeout", in: 1...3600, unit: " seconds")
        out.backoffMin = r.seconds("backoff_min", in: 0.1...3600)
        out.backoffMax = r.seconds("backoff_max", in: 1...86400)
        out.probeInterval = r.int("probe_interval", in: 0...86400, unit: " seconds")
        out.shareConnection = r.bool("share_connection")
        out.allowPublicSocks = r.bool("allow_public_socks")
        // At most the shard count, which only `warren run --shard` knows (see ShardPlan).
        out.replicas = r.int("replicas", in: 1...ShardSpec.maxCount).map { ($0, r.path("replicas")) }
        out.keyMaxAgeDays = r.int("key_max_age_days", in: 1...36500, unit: " days")
        out.login = readLogin(r)
        if let sources = r.strings("allowed_from") {
            out.allowedFrom = sources.compactMap { entry in
                let ok = !entry.value.isEmpty && entry.value.unicodeScalars.allSatisfy {
                    SourcePattern.characters.contains($0)
                }
                if !ok {
                    r.log.add(entry.path, "\"\(TerminalText.escape(entry.value))\" is not an address, CIDR block or host pattern")
                    return nil
                }
                return entry.value
            }
        }
        return out
    }
}

/// Characters allowed in a `from=` pattern: addresses, CIDR blocks, host names and wildcards.
enum SourcePattern {
    static let characters: Set<Unicode.Scalar> = Set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:/-_*?!".unicodeScalars)
}
