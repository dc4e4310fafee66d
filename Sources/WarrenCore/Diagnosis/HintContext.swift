/// The values a hint names: which tunnel, which host ssh failed at (the bastion
/// or a jump hop), the login user, the local ports and the targets. Built from
/// the tunnel's config and, when there is one, ssh's line (which names the
/// failing host); every command a hint prints is then filled in.
public struct HintContext: Sendable, Equatable {
    /// One host ssh dials.
    public struct Host: Sendable, Equatable {
        /// `the bastion`, `jump hop 1`.
        public var role: String
        public var host: String
        public var port: Int
        /// The login user: the config's, else the one ssh sends by default.
        public var user: String
        /// Where it is configured: `tunnels.db`, `tunnels.db.jump[0]`.
        public var keyPath: String
        /// The key file ssh offers it ("" when an agent or a password logs in).
        public var identityFile: String
        /// The user certificate ssh offers with the key ("" without one).
        public var certificateFile: String

        public init(role: String, host: String, port: Int, user: String, keyPath: String, identityFile: String, certificateFile: String = "") {
            self.certificateFile = certificateFile
            self.role = role
            self.host = host
            self.port = port
            self.user = user
            self.keyPath = keyPath
            self.identityFile = identityFile
        }
    }

    public var tunnel: String
    /// The host the failure happened at.
    public var failing: Host
    /// The bastion, which opens the forwards.
    public var bastion: Host
    /// Local TCP ports the tunnel listens on: the one the message names, else all.
    public var localPorts: [Int]
    /// TCP targets the bastion connects to (`host port`, as `nc -z` takes them): the one the message names, else all.
    public var targets: [String]
    /// Remote forwards' listen addresses on the bastion.
    public var remoteListens: [String]

    /// - Parameters:
    ///   - message: ssh's line or the probe's finding, which names the failing host
    ///     (by HostKeyAlias or by host and port) and sometimes a port.
    ///   - defaultUser: the user ssh logs in as when the config names none (the local user).
    public init(tunnel config: TunnelConfig, message: String? = nil, defaultUser: String) {
        let hosts = config.endpointsInOrder.enumerated().map { index, entry in
            Host(
                role: index == config.jumps.count ? "the bastion" : "jump hop \(index + 1)",
                host: entry.endpoint.host, port: entry.endpoint.port, user: entry.endpoint.user ?? defaultUser,
                keyPath: entry.keyPath, identityFile: entry.endpoint.identityFile,
                certificateFile: entry.endpoint.login.certificateFile ?? "")
        }
        let message = message ?? ""
        let failingIndex = Self.failingHost(config, message: message) ?? config.jumps.count
        tunnel = config.name
        failing = hosts[failingIndex]
        bastion = hosts[config.jumps.count]
        let tcpLocal = (config.localForwards + config.dynamicForwards).compactMap(\.listen.port)
        let named = tcpLocal.filter { Self.mentions(message, port: $0) }
        localPorts = named.isEmpty ? tcpLocal : named
        var allTargets: [String] = []
        for forward in config.localForwards {
            guard case .tcp(let host?, let port)? = forward.target else { continue }
            let entry = "\(host) \(port)"
            if !allTargets.contains(entry) { allTargets.append(entry) }
        }
        let namedForward = config.localForwards.first { $0.listen.port.map { Self.mentions(message, port: $0) } ?? false }
        if case .tcp(let host?, let port)? = namedForward?.target {
            targets = ["\(host) \(port)"]
        } else {
            targets = allTargets
        }
        remoteListens = config.remoteForwards.map(\.listen.description)
    }

    /// The index (in dialling order) of the host `message` names: its Host alias
    /// (host key lines name the HostKeyAlias), else `host port P` / `[host]:P`.
    static func failingHost(_ config: TunnelConfig, message: String) -> Int? {
        guard !message.isEmpty else { return nil }
        let entries = config.endpointsInOrder
        // Longest alias first: warren-db-jump1 also contains warren-db.
        for (index, entry) in entries.enumerated().sorted(by: { $0.element.alias.count > $1.element.alias.count })
        where message.contains(entry.alias) {
            return index
        }
        for (index, entry) in entries.enumerated() {
            let host = entry.endpoint.host, port = entry.endpoint.port
            if message.contains("\(host) port \(port)") || message.contains("[\(host)]:\(port)") || message.contains("\(host):\(port)") {
                return index
            }
        }
        // `USER@HOST: Permission denied (...)` names no port: the host, if only one endpoint has it.
        let byHost = entries.indices.filter { message.contains("@\(entries[$0].endpoint.host):") }
        return byHost.count == 1 ? byHost[0] : nil
    }

    /// Whether `message` names the port as `:PORT` (not as part of a longer number).
    static func mentions(_ message: String, port: Int) -> Bool {
        var rest = Substring(message)
        let needle = ":\(port)"
        while let range = rest.range(of: needle) {
            let after = rest[range.upperBound...].first
            if after == nil || !(after!.isNumber) { return true }
            rest = rest[range.upperBound...]
        }
        return false
    }
}
