import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Free TCP ports on loopback, and whether something listens on one.
public enum FreePort {
    /// Ports already handed out in this process, so two fixtures never get the same one.
    private static let handedOut = Mutex<Set<Int>>([])

    /// A TCP port on 127.0.0.1 that was free a moment ago, chosen below the
    /// kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range, 32768+
    /// here): the outgoing connections of ssh clients take their source ports
    /// from that range, and one of them could otherwise land on a port a test
    /// is about to give a forward. Another process may still take it before
    /// the caller binds it.
    public static func find() throws -> Int {
        let range = try portRange()
        for _ in 0..<200 {
            let candidate = Int.random(in: range)
            guard handedOut.withLock({ !$0.contains(candidate) }) else { continue }
            let fd = try LoopbackSocket.make()
            defer { close(fd) }
            guard (try? LoopbackSocket.bind(fd, port: candidate)) != nil else { continue }
            if handedOut.withLock({ $0.insert(candidate).inserted }) { return candidate }
        }
        throw FixtureError("no free port in \(range.lowerBound)-\(range.upperBound - 1) after 200 tries")
    }

    /// 20000-31999, or `WARREN_TEST_PORTS=LOW-HIGH` (inclusive), so that test
    /// runs side by side on one machine (several work trees) never race for a port.
    ///
    /// A range the caller names is used as named, even inside the ephemeral
    /// range (then, rarely, an outgoing connection may take a port first);
    /// one that cannot be used is an error. Falling back to the default would
    /// quietly put this run back on the ports every other run shares.
    static func portRange() throws -> Range<Int> {
        guard let spec = ProcessInfo.processInfo.environment["WARREN_TEST_PORTS"], !spec.isEmpty else { return 20000..<32000 }
        let parts = spec.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 2, parts[0] >= 1024, parts[0] < parts[1], parts[1] <= 65535 else {
            throw FixtureError("WARREN_TEST_PORTS=\(spec) is not LOW-HIGH with 1024 <= LOW < HIGH <= 65535")
        }
        return parts[0]..<(parts[1] + 1)
    }

    /// Whether a TCP socket in LISTEN state is bound to `port` on any local
    /// address. Reads /proc/net/tcp{,6} instead of connecting, so asking has no
    /// side effect (a connect to an ssh forward would open a channel).
    public static func isListening(_ port: Int) -> Bool {
        let wanted = String(format: ":%04X", port)
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = ProcessTable.read(table) else { continue }
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
}
