/// A validated config file: every value in it is safe to write into an
/// ssh_config and to pass to ssh.
public struct WarrenConfig: Sendable, Equatable {
    /// The file it was read from (as given: used in messages).
    public var file: String
    /// Where warren keeps generated files, keys and status: `--state-dir`, else
    /// `state_dir` from the file, else the default for this user.
    public var stateDir: String
    /// `templates_dir` from the file, if set.
    public var templatesDir: String?
    /// `ssh_binary` from the file, if set (else `ssh` on PATH, else /usr/bin/ssh).
    public var sshBinary: String?
    /// The tunnels, sorted by name.
    public var tunnels: [TunnelConfig]

    public init(
        file: String, stateDir: String, templatesDir: String? = nil,
        sshBinary: String? = nil, tunnels: [TunnelConfig]
    ) {
        self.file = file
        self.stateDir = stateDir
        self.templatesDir = templatesDir
        self.sshBinary = sshBinary
        self.tunnels = tunnels
    }

    public func tunnel(named name: String) -> TunnelConfig? {
        tunnels.first { $0.name == name }
    }
}

/// How the bastion's host key is checked.
public enum HostKeyPolicy: String, Sendable, Hashable, CaseIterable {
    /// Only the keys in `host_key` are trusted (StrictHostKeyChecking yes).
    case pinned
    /// The first key seen is pinned and kept across restarts (accept-new).
    case acceptNew = "accept-new"
    /// No checking at all. Loudly named on purpose; warren warns on every start.
    case insecureNoCheck = "insecure-no-check"
}

/// One SSH endpoint: the bastion itself or a ProxyJump hop.
public struct SSHEndpoint: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var user: String?
    public var identityFile: String
    /// Keys pinned as `TYPE BASE64`: written to known_hosts as they are.
    public var hostKeys: [HostKey]
    /// Keys pinned by fingerprint (`SHA256:...`): the key itself is found and
    /// checked against the fingerprint before known_hosts is written.
    public var hostKeyFingerprints: [HostKeyFingerprint]
    public var hostKeyPolicy: HostKeyPolicy
    /// How to log in besides the key file: an agent, a certificate, a password
    /// or the key's passphrase.
    public var login: LoginMethod

    public init(
        host: String, port: Int = 22, user: String? = nil, identityFile: String,
        hostKeys: [HostKey] = [], hostKeyFingerprints: [HostKeyFingerprint] = [],
        hostKeyPolicy: HostKeyPolicy = .pinned, login: LoginMethod = LoginMethod()
    ) {
        self.login = login
        self.host = host
        self.port = port
        self.user = user
        self.identityFile = identityFile
        self.hostKeys = hostKeys
        self.hostKeyFingerprints = hostKeyFingerprints
        self.hostKeyPolicy = hostKeyPolicy
    }

    /// Fingerprint pins whose key is not among `hostKeys` yet.
    public var unresolvedFingerprints: [HostKeyFingerprint] {
        hostKeyFingerprints.filter { pin in !hostKeys.contains(where: pin.matches) }
    }
}

/// One `[tunnels.NAME]` table with defaults applied.
public struct TunnelConfig: Sendable, Hashable {
    public var name: String
    /// The bastion.
    public var endpoint: SSHEndpoint
    /// ProxyJump hops, in order (the first is dialled first).
    public var jumps: [SSHEndpoint]
    public var localForwards: [Forward]
    public var remoteForwards: [Forward]
    public var dynamicForwards: [Forward]
    /// ServerAliveInterval, seconds.
    public var keepaliveInterval: Int
    /// ServerAliveCountMax.
    public var keepaliveCount: Int
    /// ConnectTimeout, seconds.
    public var connectTimeout: Int
    /// Restart backoff: first delay and ceiling, seconds.
    public var backoffMin: Double
    public var backoffMax: Double
    /// Seconds between target health probes through each local forward; 0 turns them off.
    public var probeInterval: Int
    /// Source addresses the bastion should accept this key from (`from=` in authorized_keys).
    public var allowedFrom: [String]
    public var enabled: Bool
    /// `share_connection`: ride one ssh master per bastion with the other
    /// tunnels that reach it the same way (see `ConnectionShare`).
    public var shareConnection: Bool
    /// On how many shards the tunnel runs at once (active-active); 1 unless set.
    public var replicas: Int
    /// Where `replicas` was set (`tunnels.NAME.replicas` or `defaults.replicas`),
    /// for the error when it exceeds the shard count; nil when not set.
    public var replicasKeyPath: String?
    /// `allow_public_socks`: a SOCKS proxy (a dynamic forward, or a remote one
    /// without a target) may listen beyond loopback, here or under
    /// `--forward-bind`. Off unless set: such a proxy opens a whole network to
    /// everyone who reaches it (see `publicListeners`).
    public var allowPublicSocks: Bool
    /// `key_max_age_days`: `check` warns (WARNING) once the key file is older.
    public var keyMaxAgeDays: Int?

    public init(
        name: String, endpoint: SSHEndpoint, jumps: [SSHEndpoint] = [],
        localForwards: [Forward] = [], remoteForwards: [Forward] = [],
        dynamicForwards: [Forward] = [],
        keepaliveInterval: Int = Defaults.keepaliveInterval,
        keepaliveCount: Int = Defaults.keepaliveCount,
        connectTimeout: Int = Defaults.connectTimeout,
        backoffMin: Double = Defaults.backoffMin, backoffMax: Double = Defaults.backoffMax,
        probeInterval: Int = Defaults.probeInterval, allowedFrom: [String] = [],
        enabled: Bool = true, shareConnection: Bool = false, replicas: Int = 1, replicasKeyPath: String? = nil,
        allowPublicSocks: Bool = false, keyMaxAgeDays: Int? = nil
    ) {
        self.keyMaxAgeDays = keyMaxAgeDays
        self.name = name
        self.endpoint = endpoint
        self.jumps = jumps
        self.localForwards = localForwards
        self.remoteForwards = remoteForwards
        self.dynamicForwards = dynamicForwards
        self.keepaliveInterval = keepaliveInterval
        self.keepaliveCount = keepaliveCount
        self.connectTimeout = connectTimeout
        self.backoffMin = backoffMin
        self.backoffMax = backoffMax
        self.probeInterval = probeInterval
        self.allowedFrom = allowedFrom
        self.enabled = enabled
        self.shareConnection = shareConnection
        self.replicas = replicas
        self.replicasKeyPath = replicasKeyPath
        self.allowPublicSocks = allowPublicSocks
    }

    /// Every forward, in the order ssh is told about them.
    public var forwards: [Forward] { localForwards + remoteForwards + dynamicForwards }

    /// false when any hop has `host_key_policy = "insecure-no-check"`: shown by
    /// `check` (WARNING), status.json (`host_key_checked`) and the metrics.
    public var checksHostKeys: Bool {
        endpointsInOrder.allSatisfy { $0.endpoint.hostKeyPolicy != .insecureNoCheck }
    }

    /// The Host alias in the generated ssh_config. warren's own, never user text.
    public var alias: String { "warren-\(name)" }

    /// The Host alias of the jump hop at `index` (0-based).
    public func jumpAlias(_ index: Int) -> String { "warren-\(name)-jump\(index + 1)" }

    /// Every endpoint in the order ssh dials them (jump hops first, the bastion
    /// last), with its Host alias and the config key path that describes it.
    public var endpointsInOrder: [(alias: String, keyPath: String, endpoint: SSHEndpoint)] {
        jumps.enumerated().map { (jumpAlias($0.offset), "tunnels.\(name).jump[\($0.offset)]", $0.element) }
            + [(alias, "tunnels.\(name)", endpoint)]
    }

    /// The values warren falls back on when neither the tunnel nor `[defaults]` sets them.
    public enum Defaults {
        public static let port = 22
        public static let keepaliveInterval = 15
        public static let keepaliveCount = 3
        public static let connectTimeout = 10
        public static let backoffMin = 1.0
        public static let backoffMax = 60.0
        public static let probeInterval = 30
    }
}
