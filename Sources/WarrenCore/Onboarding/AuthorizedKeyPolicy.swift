/// What a tunnel's key may do on the bastion, as authorized_keys options, and
/// what those options cannot limit. Pure: derived from the tunnel's forwards.
///
/// sshd (OpenSSH 9.2) facts this relies on, checked against a real sshd:
/// - With no `permitopen`, every `-L` target is allowed; with no `permitlisten`,
///   every `-R` listener. authorized_keys has no `none` (sshd rejects the whole
///   key line), so a direction the tunnel does not use gets one entry that can
///   never match: `Self.nowhere`, a name in the reserved `.invalid` domain.
/// - `permitopen` matches the host exactly as ssh asks for it (no resolving);
///   IPv6 addresses go in brackets.
/// - Once any `permitopen` is given, forwards to unix sockets are refused, and
///   no option can allow one; and a SOCKS (dynamic) forward opens arbitrary
///   targets. Either needs `permitopen` left out, which the notes say.
/// - ssh sends `localhost` as the listen host of `-R PORT:...` without a bind address.
public struct AuthorizedKeyPolicy: Sendable, Equatable {
    /// `permitopen` values (`host:port`), in config order, without duplicates.
    public var permitOpen: [String]
    /// `permitlisten` values (`host:port`).
    public var permitListen: [String]
    /// The `from` pattern list, or nil when the config names no `allowed_from`.
    public var from: String?
    /// What these options leave open, in words for the bastion's admin.
    public var notes: [String]

    /// An entry that no forward can match: it forbids a direction the tunnel does not use.
    public static let nowhere = "none.invalid:1"

    public init(permitOpen: [String], permitListen: [String], from: String?, notes: [String]) {
        self.permitOpen = permitOpen
        self.permitListen = permitListen
        self.from = from
        self.notes = notes
    }

    public init(tunnel: TunnelConfig) {
        var notes: [String] = []
        var open: [String] = []
        let socketTargets = tunnel.localForwards.compactMap { forward -> String? in
            if case .unix(let path)? = forward.target { return path }
            return nil
        }
        if !tunnel.dynamicForwards.isEmpty {
            notes.append("the SOCKS forward (dynamic_forward) lets this key reach any host and port the bastion can reach: permitopen cannot limit it")
        } else if !socketTargets.isEmpty {
            notes.append("forwards to unix sockets (\(socketTargets.joined(separator: ", "))) are refused by sshd once permitopen is set, so this line sets none: the key can reach any host and port the bastion can reach")
        } else {
            for forward in tunnel.localForwards {
                if let target = forward.target?.description, !open.contains(target) { open.append(target) }
            }
            if open.isEmpty { open = [Self.nowhere] }
        }

        var listen: [String] = []
        for forward in tunnel.remoteForwards {
            switch forward.listen {
            case .tcp(let host, let port):
                let entry = Forward.Endpoint.tcp(host: host ?? "localhost", port: port).description
                if !listen.contains(entry) { listen.append(entry) }
            case .unix(let path):
                notes.append("sshd does not limit remote forwards that listen on unix sockets (\(path)) in authorized_keys")
            }
        }
        if listen.isEmpty { listen = [Self.nowhere] }
        self.init(
            permitOpen: open, permitListen: listen,
            from: tunnel.allowedFrom.isEmpty ? nil : tunnel.allowedFrom.joined(separator: ","), notes: notes)
    }
}
