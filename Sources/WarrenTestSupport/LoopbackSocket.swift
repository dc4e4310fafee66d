#if canImport(Glibc)
import Glibc
#endif

/// The socket calls the fixtures share, all on 127.0.0.1 and close-on-exec.
enum LoopbackSocket {
    /// A new TCP socket.
    static func make(nonBlocking: Bool = false) throws -> Int32 {
        var type = SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue
        if nonBlocking { type |= SOCK_NONBLOCK.rawValue }
        let fd = socket(AF_INET, Int32(type), 0)
        guard fd >= 0 else { throw FixtureError("socket", errno: errno) }
        return fd
    }

    /// Calls `body` with `host`:`port` as a `sockaddr`; `host` must be in
    /// 127.0.0.0/8 (tests talk only to loopback).
    static func withAddress<R>(host: String = "127.0.0.1", port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        precondition(inet_pton(AF_INET, host, &address.sin_addr) == 1 && host.hasPrefix("127."), "\(host) is not a loopback address")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    /// Binds `fd` to 127.0.0.1:`port` (0: the kernel picks) and returns the bound port.
    static func bind(_ fd: Int32, port: Int) throws -> Int {
        let bound = withAddress(port: port) { Glibc.bind(fd, $0, $1) }
        guard bound == 0 else { throw FixtureError("bind 127.0.0.1:\(port)", errno: errno) }
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Writes all of `bytes`; false if the peer went away.
    static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var rest = bytes
        while !rest.isEmpty {
            let written = rest.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return false }
            rest = rest.dropFirst(written)
        }
        return true
    }

    /// Polls `fd` for `events` until `deadline`; true when ready (or hung up:
    /// the next read or write then says why).
    static func wait(_ fd: Int32, for events: Int32, until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return false }
            var entry = pollfd(fd: fd, events: Int16(events), revents: 0)
            let ready = poll(&entry, 1, Int32(max(1, left.seconds * 1000)))
            if ready > 0 { return true }
            if ready < 0, errno != EINTR { return false }
        }
    }
}
