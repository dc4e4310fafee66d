import Foundation
import WarrenCore

/// The listeners warren holds for tunnels' local forwards (see `ListenerHub`):
/// which tunnels hold them, what a reload keeps, and when a reload may
/// retire a tunnel's ssh instead of stopping it.
extension Supervisor {
    /// The tunnel's own master holds its local forwards' connections: its
    /// control socket in the tunnel's 0700 directory. Nil (ssh listens with
    /// `-L`, as before) when the tunnel has no local forward, or when the
    /// socket's path would not fit a unix socket address (107 bytes).
    func heldListeners(for tunnel: TunnelConfig) -> HeldListeners? {
        guard !HeldListeners.held(tunnel).isEmpty else { return nil }
        // A path of its own per runner: a runner retired by a reload keeps its
        // ssh (and that ssh removes its socket when it ends) while the next one's runs.
        controlSerial += 1
        let path = "\(files.directory(for: tunnel))/control.\(controlSerial)"
        guard path.utf8.count < 108 else {
            logger.warning("the control socket path \(path) is too long for a unix socket: ssh listens for the local forwards itself (-L); a shorter state_dir lets warren hold them", metadata: ["tunnel": "\(tunnel.name)"])
            return nil
        }
        // Its log pipe too: a run removes its pipe when it ends, which must not
        // be the pipe of the replacement's ssh.
        return HeldListeners(controlPath: path, logPath: "\(files.directory(for: tunnel))/ssh.log.\(controlSerial)")
    }

    /// Whether a tunnel changed by a reload can hand over to its replacement
    /// without stopping its ssh first: its ssh holds no port (warren holds
    /// every listener: no dynamic or remote forward), nor will the new one's.
    /// The connections open through it then stay open to their end.
    static func canRetire(_ runner: TunnelRunner, into next: TunnelConfig) -> Bool {
        runner.env.listeners != nil && !runner.tunnel.shareConnection && !next.shareConnection
            && HeldListeners.leftToSSH(runner.tunnel).isEmpty && HeldListeners.leftToSSH(next).isEmpty
    }

    /// Closes the listeners no running tunnel holds any more (removed, moved, or all at exit).
    func releaseListeners() async {
        await ListenerHub.shared.keepOnly(HeldListeners.keys(of: runners.values.filter { $0.env.listeners != nil }.map(\.tunnel)))
    }
}
