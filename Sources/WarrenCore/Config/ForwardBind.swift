#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// `--forward-bind ADDRESS`: every local and dynamic TCP forward listens on
/// ADDRESS instead of the address the config gives, so that one config serves
/// every pod (`0.0.0.0` there) or several supervisors on one machine (one
/// loopback address each). Applied to the loaded config, so rendering, probes,
/// status and `check` all see the address that is really used. Remote forwards
/// (they listen on the bastion) and unix sockets are left alone.
public struct ForwardBind: Sendable, Hashable, CustomStringConvertible {
    /// A numeric IPv4 or IPv6 address (without brackets).
    public var address: String

    /// Parses a numeric IPv4 or IPv6 address; `localhost` is refused because it
    /// stands for two addresses and ssh then binds only one of them.
    public static func parse(_ text: String) -> Result<ForwardBind, ForwardBindError> {
        var candidate = text
        if candidate.hasPrefix("[") && candidate.hasSuffix("]") { candidate = String(candidate.dropFirst().dropLast()) }
        if let reason = ValueRules.forbiddenCharacterReason(candidate) {
            return .failure(ForwardBindError("\"\(TerminalText.escape(text))\" \(reason)"))
        }
        var v4 = in_addr()
        var v6 = in6_addr()
        guard inet_pton(AF_INET, candidate, &v4) == 1 || inet_pton(AF_INET6, candidate, &v6) == 1 else {
            return .failure(ForwardBindError("\"\(TerminalText.escape(text))\" is not a numeric IP address; use e.g. 0.0.0.0 (every interface, in a pod), :: or 127.0.0.2"))
        }
        return .success(ForwardBind(address: candidate))
    }

    /// Whether other machines can reach what listens here: anything outside
    /// 127.0.0.0/8 and ::1. ssh is then told `GatewayPorts yes`.
    public var isReachableFromOutside: Bool { !Self.isLoopback(address) }

    public var description: String { address }

    static func isLoopback(_ host: String) -> Bool {
        host == "::1" || host == "localhost" || (host.hasPrefix("127.") && !host.contains(":"))
    }
}

/// A `--forward-bind` value that cannot be used.
public struct ForwardBindError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension WarrenConfig {
    /// The config with every local and dynamic TCP forward listening on `bind`.
    /// Forwards that listened on different addresses of one port now collide;
    /// that is an error naming both keys (and `--forward-bind`), as at load time.
    public func bindingForwards(to bind: ForwardBind) throws(ConfigError) -> WarrenConfig {
        var copy = self
        copy.tunnels = tunnels.map { tunnel in
            var tunnel = tunnel
            tunnel.localForwards = tunnel.localForwards.map { $0.listening(on: bind.address) }
            tunnel.dynamicForwards = tunnel.dynamicForwards.map { $0.listening(on: bind.address) }
            return tunnel
        }
        let log = IssueLog()
        ConfigLoader.checkLocalListeners(copy.tunnels, log)
        // A SOCKS proxy moved beyond loopback needs the same opt-in as one written there.
        for tunnel in copy.tunnels { tunnel.refusedPublicSocks.forEach(log.add) }
        guard log.issues.isEmpty else {
            throw ConfigError(file: file, issues: log.issues.map {
                ConfigIssue(path: $0.path, message: "with --forward-bind \(bind.address), this forward \($0.message)")
            })
        }
        return copy
    }
}

extension Forward {
    /// The same forward listening on `address`, when it listens on a TCP port.
    func listening(on address: String) -> Forward {
        guard case .tcp(_, let port) = listen else { return self }
        return Forward(kind: kind, listen: .tcp(host: address, port: port), target: target)
    }
}
