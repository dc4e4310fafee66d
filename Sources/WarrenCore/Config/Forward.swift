/// One port forward, in ssh's own `-L`/`-R`/`-D` syntax.
public struct Forward: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// `-L`: listens on this machine, connects from the bastion.
        case local
        /// `-R`: listens on the bastion, connects from this machine.
        case remote
        /// `-D`: a SOCKS proxy on this machine.
        case dynamic
    }

    /// Where a forward listens or connects.
    public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
        /// A TCP address; `host` nil means ssh's default bind address.
        case tcp(host: String?, port: Int)
        /// A unix-domain socket path.
        case unix(path: String)

        /// As ssh_config writes it: `[host:]port`, `[v6]:port` or a path.
        public var description: String {
            switch self {
            case .tcp(let host?, let port):
                return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .tcp(nil, let port):
                return "\(port)"
            case .unix(let path):
                return path
            }
        }

        public var port: Int? {
            if case .tcp(_, let port) = self { return port }
            return nil
        }
    }

    public var kind: Kind
    /// The listening side: on this machine for local and dynamic, on the bastion for remote.
    public var listen: Endpoint
    /// The connecting side; nil for dynamic forwards and remote SOCKS forwards.
    public var target: Endpoint?

    public init(kind: Kind, listen: Endpoint, target: Endpoint?) {
        self.kind = kind
        self.listen = listen
        self.target = target
    }

    /// The forward in ssh's command-line syntax, as a user would write it in the config.
    public var description: String {
        guard let target else { return listen.description }
        return "\(listen):\(target)"
    }

    /// Parses a forward in ssh's `-L`, `-R` or `-D` syntax. Returns the reason on failure.
    public static func parse(_ spec: String, kind: Kind) -> Result<Forward, ForwardParseError> {
        if let reason = ValueRules.forbiddenCharacterReason(spec) { return .failure(.init(reason: reason)) }
        if spec.hasPrefix("-") { return .failure(.init(reason: "starts with '-'")) }
        let tokens: [Token]
        switch tokenize(spec) {
        case .success(let t): tokens = t
        case .failure(let e): return .failure(e)
        }
        let form: String
        switch kind {
        case .local: form = "[bind_address:]port:host:hostport, [bind_address:]port:/remote/socket, /local/socket:host:hostport or /local/socket:/remote/socket"
        case .remote: form = "[bind_address:]port:host:hostport, [bind_address:]port:/local/socket, /remote/socket:host:hostport, /remote/socket:/local/socket or [bind_address:]port"
        case .dynamic: form = "[bind_address:]port"
        }
        let bad = ForwardParseError(reason: "\"\(TerminalText.escape(spec))\" does not parse as \(form)")

        // Split into the listen side (a path, or [bind:]port) and the rest.
        let listenTokens: Int
        if tokens[0].isPath {
            listenTokens = 1
        } else {
            switch tokens.count {
            case 4: listenTokens = 2
            case 3: listenTokens = tokens[2].isPath ? 2 : 1
            case 2: listenTokens = (kind == .local || tokens[1].isPath) ? 1 : 2
            default: listenTokens = 1
            }
        }
        var listen: Endpoint
        if tokens[0].isPath {
            listen = .unix(path: tokens[0].text)
        } else if listenTokens == 2, let port = Int(tokens[1].text) {
            listen = .tcp(host: tokens[0].text, port: port)
        } else if listenTokens == 1, let port = Int(tokens[0].text) {
            listen = .tcp(host: nil, port: port)
        } else {
            return .failure(bad)
        }
        let rest = tokens.dropFirst(listenTokens)
        if case .tcp(let host?, let port) = listen {
            if host != "*", host != "localhost", let reason = ValueRules.hostReason(host) {
                return .failure(.init(reason: "bind address \"\(TerminalText.escape(host))\" \(reason)"))
            }
            listen = .tcp(host: host, port: port)
        }

        let target: Endpoint?
        switch rest.count {
        case 0:
            target = nil
        case 1 where rest.first!.isPath:
            target = .unix(path: rest.first!.text)
        case 2 where !rest.first!.isPath:
            guard let port = Int(rest.last!.text) else { return .failure(bad) }
            let host = rest.first!.text
            if let reason = ValueRules.hostReason(host) {
                return .failure(.init(reason: "target host \"\(TerminalText.escape(host))\" \(reason)"))
            }
            target = .tcp(host: host, port: port)
        default:
            return .failure(bad)
        }

        switch (kind, listen, target) {
        case (.dynamic, .tcp, nil), (.remote, .tcp, nil), (.local, _, _?), (.remote, _, _?):
            break
        default:
            return .failure(bad)
        }
        for endpoint in [listen, target].compactMap({ $0 }) {
            switch endpoint {
            case .tcp(_, let port):
                if let reason = ValueRules.portReason(port) { return .failure(.init(reason: "port \(reason)")) }
            case .unix(let path):
                if let reason = ValueRules.pathReason(path) { return .failure(.init(reason: "socket path \(reason)")) }
            }
        }
        return .success(Forward(kind: kind, listen: listen, target: target))
    }

    private struct Token {
        var text: String
        var bracketed: Bool
        var isPath: Bool { !bracketed && text.hasPrefix("/") }
    }

    /// Splits on ':' except inside `[...]` (IPv6 literals).
    private static func tokenize(_ spec: String) -> Result<[Token], ForwardParseError> {
        var tokens: [Token] = []
        var current = ""
        var bracketed = false
        var inBracket = false
        for ch in spec {
            switch ch {
            case "[" where current.isEmpty && !inBracket:
                inBracket = true
                bracketed = true
            case "]" where inBracket:
                inBracket = false
            case ":" where !inBracket:
                tokens.append(Token(text: current, bracketed: bracketed))
                current = ""
                bracketed = false
            default:
                if bracketed && !inBracket { return .failure(.init(reason: "unexpected text after ']'")) }
                current.append(ch)
            }
        }
        if inBracket { return .failure(.init(reason: "unclosed '['")) }
        tokens.append(Token(text: current, bracketed: bracketed))
        if tokens.contains(where: { $0.text.isEmpty }) {
            return .failure(.init(reason: "has an empty field (write '*' to listen on all addresses)"))
        }
        return .success(tokens)
    }
}

public struct ForwardParseError: Error, Sendable, Equatable {
    public var reason: String
}
