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
            let fd = try LoopbackSocket.make()
            defer { close(fd) }
            let port = try LoopbackSocket.bind(fd, port: 0)
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
            // Not String(contentsOfFile:): on these size-0 files it stops after
            // the first read (~4 KB), missing most sockets of a busy machine.
            guard let handle = FileHandle(forReadingAtPath: table) else { continue }
            defer { try? handle.close() }
            let text = String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
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
