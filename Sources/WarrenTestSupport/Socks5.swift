import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal SOCKS5 client (no authentication, CONNECT to 127.0.0.1): what a
/// program behind a `dynamic_forward` does.
public enum Socks5 {
    /// Connects through the proxy at `proxyPort` to 127.0.0.1:`targetPort`;
    /// returns the connection (the caller closes it), or nil when the proxy refused.
    public static func connect(proxyPort: Int, targetPort: Int) throws -> Int32? {
        let fd = try TCPClient.connect(port: proxyPort)
        guard send(fd, [5, 1, 0]), receive(fd, 2) == [5, 0],
              send(fd, [5, 1, 0, 1, 127, 0, 0, 1, UInt8(targetPort >> 8), UInt8(targetPort & 0xFF)]),
              let reply = receive(fd, 10), reply[1] == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// CONNECT through the proxy, then one echo from the target.
    public static func echo(proxyPort: Int, targetPort: Int) throws -> Bool {
        guard let fd = try connect(proxyPort: proxyPort, targetPort: targetPort) else { return false }
        defer { close(fd) }
        return TCPClient.echo(on: fd, payload: Array("through socks \(targetPort)\n".utf8))
    }

    private static func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
    }

    private static func receive(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: count)
        let deadline = Date().addingTimeInterval(5)
        while out.count < count, Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 500) >= 0 else { return nil }
            let n = read(fd, &buffer, count - out.count)
            if n == 0 { return nil }
            if n > 0 { out += buffer[..<n] }
        }
        return out.count == count ? out : nil
    }
}
