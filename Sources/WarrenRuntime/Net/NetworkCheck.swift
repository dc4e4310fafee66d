import Foundation
import WarrenCore

/// The socket-level checks of `warren doctor`: resolve, connect, read the SSH
/// banner, try a bind. Blocking calls with explicit time limits, run off the
/// cooperative pool.
enum NetworkCheck {
    /// One resolved address.
    struct Address: Sendable {
        var family: Int32
        var storage: [UInt8]
        var text: String
    }

    enum ConnectFailure: Error, Equatable {
        case refused
        case timedOut
        /// Any other errno (unreachable network, no route, ...).
        case other(Int32)

        var words: String {
            switch self {
            case .refused: return "Connection refused"
            case .timedOut: return "Connection timed out"
            case .other(let code): return String(cString: strerror(code))
            }
        }
    }

    struct ResolveFailure: Error { var words: String }

    /// getaddrinfo for TCP; on failure, the resolver's own words.
    static func resolve(host: String, port: Int) -> Result<[Address], ResolveFailure> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        // An address as text first (every probe of a local forward): no
        // name service, no reading /etc/hosts and nsswitch.conf each time.
        hints.ai_flags = AI_NUMERICHOST
        var rc = getaddrinfo(host, String(port), &hints, &list)
        if rc == EAI_NONAME {
            hints.ai_flags = 0
            rc = getaddrinfo(host, String(port), &hints, &list)
        }
        guard rc == 0, let first = list else { return .failure(ResolveFailure(words: String(cString: gai_strerror(rc)))) }
        defer { freeaddrinfo(list) }
        var out: [Address] = []
        var current: UnsafeMutablePointer<addrinfo>? = first
        while let info = current {
            let bytes = Array(UnsafeRawBufferPointer(start: info.pointee.ai_addr, count: Int(info.pointee.ai_addrlen)))
            var name = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            getnameinfo(info.pointee.ai_addr, info.pointee.ai_addrlen, &name, socklen_t(name.count), nil, 0, NI_NUMERICHOST)
            let text = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !out.contains(where: { $0.text == text }) {
                out.append(Address(family: info.pointee.ai_family, storage: bytes, text: text))
            }
            current = info.pointee.ai_next
        }
        return .success(out)
    }

    /// A connected, blocking socket, or why not, within `timeout` seconds.
    static func connect(_ address: Address, timeout: Double) -> Result<Int32, ConnectFailure> {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(.other(errno)) }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        let rc = address.storage.withUnsafeBytes { raw in
            Glibc.connect(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        if rc != 0 {
            guard errno == EINPROGRESS else { return fail(fd, errno) }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&pfd, 1, Int32(timeout * 1000))
            if ready == 0 {
                close(fd)
                return .failure(.timedOut)
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if ready < 0 || error != 0 { return fail(fd, ready < 0 ? errno : error) }
        }
        _ = fcntl(fd, F_SETFL, flags)
        return .success(fd)
    }

    /// Why `host:port` cannot be reached over TCP from here, as a failure kind,
    /// or nil when a connection succeeds.
    static func unreachableKind(host: String, port: Int, timeout: Double) -> FailureKind? {
        guard case .success(let addresses) = resolve(host: host, port: port) else { return .dnsFailure }
        var kind = FailureKind.connectTimeout
        for address in addresses {
            switch connect(address, timeout: timeout) {
            case .success(let fd):
                close(fd)
                return nil
            case .failure(.refused): kind = .connectionRefused
            case .failure: continue
            }
        }
        return kind
    }

    private static func fail(_ fd: Int32, _ code: Int32) -> Result<Int32, ConnectFailure> {
        close(fd)
        switch code {
        case ECONNREFUSED: return .failure(.refused)
        case ETIMEDOUT: return .failure(.timedOut)
        default: return .failure(.other(code))
        }
    }

    enum BannerResult: Equatable {
        case banner(String)
        /// Connected, then silence.
        case silent
        /// The peer closed the connection before sending a banner.
        case closed
        /// It sent something that is not an SSH banner (its first line).
        case notSSH(String)
    }

    /// Reads the server's identification line (RFC 4253 4.2: lines before
    /// `SSH-` may come first and are skipped), closing `fd` in the end.
    static func readBanner(_ fd: Int32, timeout: Double) -> BannerResult {
        defer { close(fd) }
        let deadline = Date().addingTimeInterval(timeout)
        var buffer: [UInt8] = []
        var firstLine: String?
        while true {
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                var line = String(decoding: buffer[..<newline], as: UTF8.self)
                if line.hasSuffix("\r") { line.removeLast() }
                buffer.removeSubrange(...newline)
                if line.hasPrefix("SSH-") { return .banner(line) }
                if firstLine == nil { firstLine = line }
            }
            if buffer.count > 8192 { return .notSSH(firstLine ?? String(decoding: buffer.prefix(80), as: UTF8.self)) }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return firstLine.map(BannerResult.notSSH) ?? .silent }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 1024)
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return firstLine.map(BannerResult.notSSH) ?? .closed }
            buffer += chunk[..<n]
        }
    }

    enum BindResult: Equatable {
        case free
        case inUse
        case failed(String)
    }

    /// Whether this machine could listen on `host:port` now, as ssh would
    /// (SO_REUSEADDR); nil host means ssh's default, the loopback addresses.
    static func tryBind(host: String?, port: Int) -> [(address: String, result: BindResult)] {
        let hosts: [String]
        switch host {
        case nil, "localhost": hosts = ["127.0.0.1", "::1"]
        case "*", "": hosts = ["0.0.0.0", "::"]
        case let h?: hosts = [h]
        }
        return hosts.map { name in
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST
            var list: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(name, String(port), &hints, &list) == 0, let info = list else {
                return (name, .failed("\(name) is not an address"))
            }
            defer { freeaddrinfo(list) }
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                // No IPv6 on this machine: ssh skips that address too.
                return (name, errno == EAFNOSUPPORT ? .free : .failed(String(cString: strerror(errno))))
            }
            defer { close(fd) }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if info.pointee.ai_family == AF_INET6 {
                setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            if bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
                if errno == EADDRINUSE { return (name, .inUse) }
                if errno == EADDRNOTAVAIL && name == "::1" { return (name, .free) }  // no IPv6 loopback here
                return (name, .failed(String(cString: strerror(errno))))
            }
            return (name, listen(fd, 1) == 0 ? .free : (errno == EADDRINUSE ? .inUse : .failed(String(cString: strerror(errno)))))
        }
    }

    /// The process listening on TCP `port` (any local address), from /proc:
    /// only processes this user may inspect are found.
    static func listener(port: Int) -> (pid: Int32, command: String)? {
        let wanted = String(format: ":%04X", port)
        var inodes: Set<String> = []
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = procText(table) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                if fields.count > 9, fields[1].hasSuffix(wanted), fields[3] == "0A" { inodes.insert(String(fields[9])) }
            }
        }
        guard !inodes.isEmpty else { return nil }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(entry)/fd") else { continue }
            for fd in fds {
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/fd/\(fd)"),
                    target.hasPrefix("socket:["), inodes.contains(String(target.dropFirst(8).dropLast()))
                else { continue }
                // Any local user chooses their command line: escaped, it cannot clear the screen or fake a line.
                let command = TerminalText.escape(ProcessInfoReader.commandLine(pid)?.joined(separator: " ") ?? "?")
                return (pid, command)
            }
        }
        return nil
    }

    /// The whole of a /proc file. Foundation's `String(contentsOfFile:)` and
    /// `FileManager.contents(atPath:)` stop after the first read (about 4 KB) of
    /// these size-0 files, which drops most sockets of a busy machine from
    /// /proc/net/tcp; `FileHandle.readToEnd()` reads until EOF.
    static func procText(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    }

    /// Runs a blocking check on a thread of its own, not the cooperative pool.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: work()) }.start()
        }
    }
}
