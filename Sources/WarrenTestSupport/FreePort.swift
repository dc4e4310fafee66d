import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Free TCP ports on loopback, and whether something listens on one.
public enum FreePort {
    /// Ports already handed out in this process, so two fixtures never get the same one.
    private static let handedOut = Mutex<Set<Int>>([])

    /// A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks
    /// one for a socket bound to port 0, and the socket is closed again.
    /// Another process may still take it before the caller binds it.
    public static func find() throws -> Int {
        for _ in 0..<50 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw FixtureError("socket", errno: errno) }
            defer { close(fd) }
            var address = loopback(port: 0)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard bound == 0 else { throw FixtureError("bind 127.0.0.1:0", errno: errno) }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            let port = Int(UInt16(bigEndian: address.sin_port))
            if handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
        throw FixtureError("no free port after 50 tries")
    }

    /// Whether a TCP socket in LISTEN state is bound to `port` on any local
    /// address. Reads /proc/net/tcp{,6} instead of connecting, so asking has no
    /// side effect (a connect to an ssh forward would open a channel).
    public static func isListening(_ port: Int) -> Bool {
        let wanted = String(format: ":%04X", port)
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                // fields: sl, local_address, rem_address, st, ...; st 0A is LISTEN.
                if fields.count > 3, fields[1].hasSuffix(wanted), fields[3] == "0A" { return true }
            }
        }
        return false
    }

    /// Polls `isListening` until it is true or `timeout` passes.
    public static func waitUntilListening(_ port: Int, timeout: Duration = .seconds(10)) -> Bool {
        waitUntil(timeout: timeout) { isListening(port) }
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }
}
