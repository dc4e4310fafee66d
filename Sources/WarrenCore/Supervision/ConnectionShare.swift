/// What tunnels with `share_connection = true` must have in common to ride
/// one ssh master: they reach the same bastion the same way (host, port,
/// user, identity, jump chain, host key settings, keepalives, timeouts).
/// The master is a tunnel of its own with no forwards; each member adds its
/// forwards to it with `ssh -O forward` and removes them with `-O cancel`, so
/// N tunnels cost one handshake and one ssh process.
public struct ConnectionShare: Sendable, Hashable {
    public let endpoint: SSHEndpoint
    public let jumps: [SSHEndpoint]
    public let keepaliveInterval: Int
    public let keepaliveCount: Int
    public let connectTimeout: Int
    public let backoffMin: Double
    public let backoffMax: Double

    public init(_ tunnel: TunnelConfig) {
        endpoint = tunnel.endpoint
        jumps = tunnel.jumps
        keepaliveInterval = tunnel.keepaliveInterval
        keepaliveCount = tunnel.keepaliveCount
        connectTimeout = tunnel.connectTimeout
        backoffMin = tunnel.backoffMin
        backoffMax = tunnel.backoffMax
    }

    /// A name for the master that no tunnel can have (tunnel names start with
    /// a letter or digit), stable across restarts: `_shared-` and 12 hex digits.
    public var name: String {
        let digest = SHA256.hash(Array(String(describing: self).utf8))
        return "_shared-" + digest.prefix(6).map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined()
    }

    /// The master as a tunnel: the shared endpoints, no forwards, no probes.
    public var master: TunnelConfig {
        TunnelConfig(
            name: name, endpoint: endpoint, jumps: jumps, keepaliveInterval: keepaliveInterval,
            keepaliveCount: keepaliveCount, connectTimeout: connectTimeout, backoffMin: backoffMin,
            backoffMax: backoffMax, probeInterval: 0)
    }
}

/// How a generated ssh_config uses a control socket.
public enum ControlRole: Sendable, Equatable {
    /// No multiplexing (one ssh per tunnel): `ControlMaster no`, `ControlPath none`.
    case none
    /// The shared connection's master listens on this socket.
    case master(path: String)
    /// A member: `-O forward`/`-O cancel` talk to the master on this socket.
    case member(path: String)
    /// A tunnel's own master (one per tunnel): warren holds the listeners of
    /// its local forwards and hands each connection to this socket, so the
    /// file has no `LocalForward` of its own.
    case holding(path: String)
}
