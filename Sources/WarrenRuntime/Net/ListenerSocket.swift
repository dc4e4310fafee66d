import Foundation
import WarrenCore

/// The listening sockets of one local forward, bound by warren (not ssh):
/// the addresses ssh itself would bind for the same `-L` (both loopback
/// addresses for a forward without a bind address), SO_REUSEADDR as ssh sets
/// it, non-blocking and close-on-exec (no child inherits them).
struct ListenerSocket: Sendable {
    var fds: [Int32]
    /// A unix-socket forward's path and the inode warren created there, so
    /// that closing never unlinks a socket someone else put in its place.
    var unixPath: String?
    var unixInode: UInt64?

    enum Failure: Error, Equatable {
        /// Another program holds the address.
        case inUse(String)
        case failed(String)

        var message: String {
            switch self {
            case .inUse(let what): return "bind \(what): Address already in use"
            case .failed(let what): return what
            }
        }
    }

    static func bind(_ endpoint: Forward.Endpoint) -> Result<ListenerSocket, Failure> {
        switch endpoint {
        case .tcp(let host, let port): return bindTCP(host: host, port: port)
        case .unix(let path): return bindUnix(path)
        }
    }

    func close() {
        for fd in fds { _ = Glibc.close(fd) }
        // Only the socket warren made: the same inode, still a socket.
        if let unixPath, let unixInode {
            var info = stat()
            if lstat(unixPath, &info) == 0, UInt64(info.st_ino) == unixInode, info.st_mode & S_IFMT == S_IFSOCK { unlink(unixPath) }
        }
    }

    private static func bindTCP(host: String?, port: Int) -> Result<ListenerSocket, Failure> {
        let hosts: [String]
        switch host {
        case nil, "localhost": hosts = ["127.0.0.1", "::1"]
        case "*", "": hosts = ["0.0.0.0", "::"]
        case let h?: hosts = [h]
        }
        var fds: [Int32] = []
        func fail(_ failure: Failure) -> Result<ListenerSocket, Failure> {
            for fd in fds { _ = Glibc.close(fd) }
            return .failure(failure)
        }
        for name in hosts {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST
            var list: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(name, String(port), &hints, &list) == 0, let info = list else {
                return fail(.failed("\(name) is not an address"))
            }
            defer { freeaddrinfo(list) }
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            if fd < 0 && errno == EAFNOSUPPORT { continue }  // no IPv6 here: ssh skips it too
            guard fd >= 0 else { return fail(.failed("socket: \(String(cString: strerror(errno)))")) }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if info.pointee.ai_family == AF_INET6 {
                setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            if Glibc.bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0 {
                let error = errno
                _ = Glibc.close(fd)
                if error == EADDRNOTAVAIL && name == "::1" { continue }  // no IPv6 loopback here
                let what = name.contains(":") ? "[\(name)]:\(port)" : "\(name):\(port)"
                return fail(error == EADDRINUSE ? .inUse(what) : .failed("bind \(what): \(String(cString: strerror(error)))"))
            }
            fds.append(fd)
        }
        guard !fds.isEmpty else { return .failure(.failed("no address to listen on for port \(port)")) }
        return .success(ListenerSocket(fds: fds))
    }

    /// A unix socket is made 0600 under a temporary name beside the path and
    /// then renamed into place, so that no other user can connect in between
    /// (ssh's StreamLocalBindMask 0177 does the same with the umask, which is
    /// process-wide here). An existing socket nobody answers on is a leftover
    /// and replaced; one that answers belongs to someone: in use.
    private static func bindUnix(_ path: String) -> Result<ListenerSocket, Failure> {
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else { return .failure(.failed("\(path) exists and is not a socket")) }
            if answers(path) { return .failure(.inUse(path)) }
        }
        let temporary = "\(path).warren-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard var address = unixAddress(temporary) else { return .failure(.failed("the socket path \(path) is too long")) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return .failure(.failed("socket: \(String(cString: strerror(errno)))")) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let error = errno
            _ = Glibc.close(fd)
            return .failure(.failed("bind \(path): \(String(cString: strerror(error)))"))
        }
        guard chmod(temporary, 0o600) == 0, listen(fd, SOMAXCONN) == 0, rename(temporary, path) == 0, lstat(path, &info) == 0 else {
            let error = errno
            unlink(temporary)
            _ = Glibc.close(fd)
            return .failure(.failed("listen on \(path): \(String(cString: strerror(error)))"))
        }
        return .success(ListenerSocket(fds: [fd], unixPath: path, unixInode: UInt64(info.st_ino)))
    }

    static func unixAddress(_ path: String) -> sockaddr_un? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// Whether something accepts connections on the unix socket at `path`.
    private static func answers(_ path: String) -> Bool {
        guard var address = unixAddress(path) else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { _ = Glibc.close(fd) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return connected == 0
    }
}
