import Foundation
import WarrenCore

/// The local forwards of a tunnel whose listeners warren holds (see
/// `ListenerHub`), and the control socket of the master they go to: the
/// tunnel's own ssh (process mode) or its shared connection's master.
public struct HeldListeners: Sendable {
    public var controlPath: String
    /// The log pipe of the runner's ssh, when it is the runner's own (nil: shared mode).
    public var logPath: String?
    let hub: ListenerHub

    public init(controlPath: String, logPath: String? = nil) {
        self.controlPath = controlPath
        self.logPath = logPath
        self.hub = .shared
    }

    /// The forwards warren listens for: every local forward (TCP or unix
    /// socket). Dynamic (SOCKS) forwards stay with ssh, and remote ones live
    /// on the bastion.
    static func held(_ tunnel: TunnelConfig) -> [(index: Int, forward: Forward)] {
        tunnel.forwards.enumerated().filter { $0.element.kind == .local && $0.element.target != nil }.map { ($0.offset, $0.element) }
    }

    /// The forwards ssh itself still listens for or asks the bastion for.
    static func leftToSSH(_ tunnel: TunnelConfig) -> [Forward] {
        tunnel.forwards.filter { $0.kind != .local || $0.target == nil }
    }

    /// Removes the control sockets earlier ssh of the tunnel left in its
    /// directory (`control.N`). A retired ssh still running keeps its
    /// connections: they do not go through the socket's name.
    static func removeControlSockets(in directory: String) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix("control.") {
            var info = stat()
            let path = "\(directory)/\(name)"
            if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK { unlink(path) }
        }
    }

    /// Every listener key of these tunnels (what a reload keeps).
    public static func keys(of tunnels: [TunnelConfig]) -> Set<ListenerHub.Key> {
        Set(tunnels.flatMap { held($0).map(\.forward.listen) })
    }
}

extension TunnelRunner {
    /// The listeners of the tunnel's local forwards, bound once (a listener
    /// the hub holds already, from before a reload, is kept) and given to
    /// this runner. Nil when all are held; else why one cannot be bound.
    func holdListeners() -> ExitDiagnosis? {
        guard let listeners = env.listeners else { return nil }
        for (index, forward) in HeldListeners.held(tunnel) {
            guard let target = forward.target else { continue }
            let owner = ListenerHub.Owner(
                tunnel: tunnel.name, generation: generation, index: index, target: target, waitLimit: Double(tunnel.connectTimeout),
                onCounts: { [input] index, counts in input.yield(.counted(index: index, counts)) })
            if let failure = listeners.hub.hold(forward.listen, owner: owner) {
                switch failure {
                case .inUse: return ExitDiagnosis(kind: .localPortInUse, message: failure.message)
                case .failed: return ExitDiagnosis(kind: .unknown, message: "cannot listen on \(forward.listen): \(failure.message)")
                }
            }
        }
        return nil
    }

    /// Whether every local port the tunnel needs can be had now: the held
    /// listeners bound (binding them if free), the others free for ssh.
    func localPortsFree() -> Bool {
        guard env.listeners != nil else { return LocalPorts.canBind(tunnel.localForwards + tunnel.dynamicForwards) }
        return holdListeners() == nil && LocalPorts.canBind(tunnel.dynamicForwards)
    }

    /// Sends the held listeners' connections to the master while the tunnel
    /// is up (or degraded); otherwise they wait. A tunnel that gave up
    /// (`failed`: it needs a human) closes those waiting.
    func routeListeners(serving: Bool, gaveUp: Bool) {
        guard let listeners = env.listeners else { return }
        let keys = HeldListeners.held(tunnel).map(\.forward.listen)
        listeners.hub.route(keys, to: serving ? listeners.controlPath : nil, generation: generation)
        if gaveUp { listeners.hub.refuse(keys, generation: generation) }
    }

    /// A probe of every held forward: a channel open through the master with
    /// no client (the bastion's answer is the probe's), no log line to read.
    func probeHeld(hold: Double) async -> ProbeOutcome {
        guard let listeners = env.listeners else {
            return await TargetProbe.probeAll(tunnel.localForwards.map(\.listen), hold: hold)
        }
        for (_, forward) in HeldListeners.held(tunnel) {
            let outcome = await listeners.hub.probe(forward.listen)
            if outcome != .answered { return outcome }
        }
        return .answered
    }
}
