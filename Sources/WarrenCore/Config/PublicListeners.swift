/// A forward that listens where other machines can reach it, and what that
/// opens to them. Named by `validate`, `where`, `run`'s start log and `check`:
/// a forward beyond loopback has no authentication of its own.
public struct PublicListener: Sendable, Equatable, CustomStringConvertible {
    /// The key that made it: `tunnels.NAME.dynamic_forward[0]`.
    public var keyPath: String
    public var forward: Forward
    /// A SOCKS proxy (a dynamic forward, or a remote forward without a
    /// target): it opens a whole network, not one service, and needs
    /// `allow_public_socks = true`.
    public var isSocks: Bool

    /// One plain sentence: the key, where it listens, what anyone who reaches it gets.
    public var description: String {
        let listen = forward.listen.description
        switch (forward.kind, forward.target) {
        case (.local, let target?):
            return "\(keyPath) listens on \(listen), beyond loopback: every host that can reach this machine there connects through the bastion to \(target), with no authentication"
        case (.dynamic, _), (.local, nil):
            return "\(keyPath) is a SOCKS proxy on \(listen), beyond loopback: every host that can reach this machine there can open connections into the bastion's network, with no authentication"
        case (.remote, let target?):
            return "\(keyPath) asks the bastion to listen on \(listen), beyond its loopback (sshd honours that with GatewayPorts clientspecified or yes): every host that can reach the bastion there connects to \(target) from this machine, with no authentication"
        case (.remote, nil):
            return "\(keyPath) asks the bastion for a SOCKS proxy on \(listen), beyond its loopback (sshd honours that with GatewayPorts clientspecified or yes): every host that can reach the bastion there can open connections into this machine's network, with no authentication"
        }
    }
}

extension TunnelConfig {
    /// Every forward that listens beyond loopback, in config order: a local or
    /// dynamic forward bound to an address other than 127.0.0.0/8, ::1 or
    /// localhost (`*`, `0.0.0.0`, `::`, an interface address), and a remote
    /// forward that names such an address on the bastion. A forward without a
    /// bind address listens on loopback (ssh's and sshd's default).
    public var publicListeners: [PublicListener] {
        var out: [PublicListener] = []
        for (key, forwards) in [("local_forward", localForwards), ("remote_forward", remoteForwards), ("dynamic_forward", dynamicForwards)] {
            for (index, forward) in forwards.enumerated() {
                guard case .tcp(let host?, _) = forward.listen, !ForwardBind.isLoopback(host) else { continue }
                out.append(PublicListener(
                    keyPath: "tunnels.\(name).\(key)[\(index)]", forward: forward,
                    isSocks: forward.kind == .dynamic || (forward.kind == .remote && forward.target == nil)))
            }
        }
        return out
    }

    /// The SOCKS proxies beyond loopback that `allow_public_socks` does not
    /// allow: each a config error, saying how to open it on purpose.
    public var refusedPublicSocks: [ConfigIssue] {
        guard !allowPublicSocks else { return [] }
        return publicListeners.filter(\.isSocks).map { listener in
            let side = listener.forward.kind == .remote ? "the bastion's network into this machine's" : "this machine's network into the bastion's"
            return ConfigIssue(
                path: listener.keyPath,
                message: "listens on \(listener.forward.listen), beyond loopback: an unauthenticated SOCKS proxy from \(side) for every host that reaches it; listen on 127.0.0.1 instead, or set allow_public_socks = true in [tunnels.\(name)] (or [defaults]) to open it on purpose")
        }
    }
}
