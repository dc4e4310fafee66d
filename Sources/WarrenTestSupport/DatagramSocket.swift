import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A unix datagram socket a test binds and reads, standing in for systemd's
/// `$NOTIFY_SOCKET`. A name starting with `@` is bound in the abstract
/// namespace (no file); any other is a path, removed on `close()`.
public final class DatagramSocket: @unchecked Sendable {
    /// The name to hand over as NOTIFY_SOCKET.
    public let name: String
    private let fd: Int32

    public init(name: String) throws {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 } else { unlink(name) }
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw FixtureError("socket name too long: \(name)") }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket(AF_UNIX, SOCK_DGRAM)", errno: errno) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes[0] == 0 ? 0 : 1))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else {
            let error = errno
            Glibc.close(fd)
            throw FixtureError("bind \(name)", errno: error)
        }
        self.name = name
        self.fd = fd
    }

    /// The next datagram, or nil if none arrives within `timeout`.
    public func receive(timeout: Duration) -> String? {
        guard LoopbackSocket.wait(fd, for: POLLIN, until: .now + timeout) else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }

    /// Every datagram already waiting.
    public func drain() -> [String] {
        var messages: [String] = []
        while let message = receive(timeout: .milliseconds(1)) { messages.append(message) }
        return messages
    }

    public func close() {
        Glibc.close(fd)
        if !name.hasPrefix("@") { unlink(name) }
    }

    deinit { close() }
}
