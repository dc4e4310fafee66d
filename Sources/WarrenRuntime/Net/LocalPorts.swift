import WarrenCore

/// Whether the local side of forwards could be bound now: the same bind ssh
/// will make (doctor's check), without ssh and without a handshake, so a port
/// held by another program is watched cheaply and the tunnel starts the moment
/// it is let go.
enum LocalPorts {
    static func canBind(_ forwards: [Forward]) -> Bool {
        forwards.allSatisfy { forward in
            guard case .tcp(let host, let port) = forward.listen else { return true }
            return NetworkCheck.tryBind(host: host, port: port).allSatisfy { $0.result != .inUse }
        }
    }
}
