import Foundation
import WarrenCore

/// Who holds a tunnel's local TCP ports: what `warren status` and `warren check`
/// name when a running supervisor reports `local_port_in_use`. The same /proc
/// lookup as doctor's (`NetworkCheck.listener`).
public enum PortHolders {
    /// One phrase per local or dynamic TCP forward of `tunnel` whose port a
    /// process other than `excluding` (the supervisor, the tunnel's ssh) listens
    /// on: `127.0.0.1:15432 is held by pid 812 (nc -l 15432)`.
    public static func describe(_ tunnel: TunnelConfig, excluding: Set<Int32>) -> [String] {
        var seen: Set<Int> = []
        return (tunnel.localForwards + tunnel.dynamicForwards).compactMap { forward in
            guard case .tcp(_, let port) = forward.listen, seen.insert(port).inserted,
                let holder = NetworkCheck.listener(port: port), !excluding.contains(holder.pid)
            else { return nil }
            // `listener` escapes the command line it reads.
            return "\(forward.listen) is held by pid \(holder.pid) (\(holder.command))"
        }
    }
}
