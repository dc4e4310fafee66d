import Foundation
import Synchronization

/// A tiny HTTP/1.1 server on plain sockets that answers `GET /metrics` (and
/// HEAD) with the Prometheus text, `GET /healthz` with 200 while the supervisor
/// answers (a liveness probe's question), 404 for any other path, 405 for any other
/// method, and closes each connection after one response. Not a web server:
/// one request per connection, 5 seconds for the whole of it (not per read: a
/// byte every few seconds does not keep a connection), at most 16 at once and
/// 4 per client address. A new connection is never turned away for slow ones:
/// when a limit is reached the oldest connection (of that address first) is
/// dropped, so clients that hold connections open cannot keep scrapes failing.
public final class MetricsServer: Sendable {
    /// Where to listen: `HOST:PORT`, `[V6]:PORT` or a bare `PORT` (127.0.0.1).
    public struct Address: Sendable, Equatable, CustomStringConvertible {
        /// A numeric address.
        public var host: String
        public var port: Int

        /// 127.0.0.0/8 or ::1.
        public var isLoopback: Bool {
            if host == "::1" { return true }
            return host.split(separator: ".").first == "127" && host.split(separator: ".").count == 4
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// Parses `--metrics-listen`; `localhost` means 127.0.0.1. Returns why not on failure.
        public static func parse(_ text: String) -> Result<Address, MetricsServerError> {
            var host = "127.0.0.1"
            var portText = Substring(text)
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                    return .failure(.init("\(text): expected [ADDRESS]:PORT"))
                }
                host = String(text[text.index(after: text.startIndex)..<close])
                portText = text[text.index(close, offsetBy: 2)...]
            } else if let colon = text.lastIndex(of: ":") {
                host = String(text[..<colon])
                portText = text[text.index(after: colon)...]
                if host.contains(":") { return .failure(.init("\(text): write an IPv6 address in brackets, [::1]:PORT")) }
            }
            if host == "localhost" { host = "127.0.0.1" }
            guard let port = Int(portText), (1...65535).contains(port) else {
                return .failure(.init("\(text): the port must be 1-65535"))
            }
            guard numericFamily(host) != nil else {
                return .failure(.init("\(text): \(host) is not a numeric IP address (or localhost)"))
            }
            return .success(Address(host: host, port: port))
        }

        static func numericFamily(_ host: String) -> Int32? {
            var v4 = in_addr()
            if inet_pton(AF_INET, host, &v4) == 1 { return AF_INET }
            var v6 = in6_addr()
            if inet_pton(AF_INET6, host, &v6) == 1 { return AF_INET6 }
            return nil
        }
    }

    public let address: Address
    private let listener: Int32
    private let stopped = Mutex(false)
    /// Open connections: descriptor, client address, when accepted (monotonic ns).
    private let active = Mutex<[Int32: (client: String, since: UInt64)]>([:])
    static let maxConnections = 16
    static let maxPerClient = 4
    static let requestBudget: Duration = .seconds(5)
    private let done = DispatchSemaphore(value: 0)
    private let render: @Sendable () -> String
    private let health: @Sendable () -> Health

    /// What `/healthz` says: healthy, or why not.
    public enum Health: Sendable, Equatable {
        case healthy
        case unhealthy(String)
    }

    private init(address: Address, listener: Int32, render: @escaping @Sendable () -> String, health: @escaping @Sendable () -> Health) {
        self.address = address
        self.listener = listener
        self.render = render
        self.health = health
    }

    /// Binds and starts answering. `render` is called for every scrape,
    /// `health` for every `/healthz`.
    public static func start(_ address: Address, render: @escaping @Sendable () -> String, health: @escaping @Sendable () -> Health = { .healthy }) throws -> MetricsServer {
        let listener = try bind(address)
        let server = MetricsServer(address: address, listener: listener, render: render, health: health)
        let thread = Thread { server.acceptLoop() }
        thread.name = "warren-metrics"
        thread.start()
        return server
    }

    /// Stops accepting and closes the listener.
    public func stop() {
        let already = stopped.withLock { state in
            defer { state = true }
            return state
        }
        guard !already else { return }
        done.wait()
    }

    private func acceptLoop() {
        defer {
            close(listener)
            done.signal()
        }
        while !stopped.withLock({ $0 }) {
            var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 200) > 0 else { continue }
            var peer = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let connection = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &length) }
            }
            guard connection >= 0 else { continue }
            // ssh children must not inherit a scraper's connection.
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            admit(connection, client: Self.clientAddress(peer))
            // A thread of its own, not Dispatch's pool: serving a slow client
            // blocks for up to the request deadline.
            Thread { [self] in
                serve(connection)
                // Out of the table before close, so an eviction never shuts down a reused descriptor.
                active.withLock { _ = $0.removeValue(forKey: connection) }
                close(connection)
            }.start()
        }
    }

    /// Registers a new connection; at a limit, shuts down the oldest one of
    /// the same client (or of all, at the global limit) to make room.
    private func admit(_ connection: Int32, client: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        active.withLock { table in
            let mine = table.filter { $0.value.client == client }
            let pool = mine.count >= Self.maxPerClient ? mine : (table.count >= Self.maxConnections ? table : [:])
            if let oldest = pool.min(by: { $0.value.since < $1.value.since }) {
                // Its serving thread sees EOF at once, answers nothing and closes it.
                shutdown(oldest.key, Int32(SHUT_RDWR))
                table.removeValue(forKey: oldest.key)
            }
            table[connection] = (client, now)
        }
    }

    private func serve(_ connection: Int32) {
        let deadline = ContinuousClock.now + Self.requestBudget
        guard let head = readHead(connection, until: deadline) else {
            respond(connection, 400, "Bad Request", "bad request\n", until: deadline)
            return
        }
        let response = Self.response(toHead: head, render: render, health: health)
        send(connection, response, until: deadline)
    }

    /// Waits until `connection` is ready for `events` or the deadline passes.
    private static func wait(_ connection: Int32, for events: Int32, until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return false }
            var entry = pollfd(fd: connection, events: Int16(events), revents: 0)
            let milliseconds = Int32(min(left / .milliseconds(1), 5000).rounded(.up))
            let ready = poll(&entry, 1, max(1, milliseconds))
            if ready < 0 && errno == EINTR { continue }
            return ready > 0
        }
    }

    /// The peer's numeric address, which the per-client limit counts by.
    static func clientAddress(_ peer: sockaddr_storage) -> String {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var copy = peer
        let ok = withUnsafePointer(to: &copy) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, socklen_t(MemoryLayout<sockaddr_storage>.size), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST)
            }
        }
        return ok == 0 ? String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
    }

    /// The response to a request head (the request line and headers): pure, so
    /// tests can ask without a socket.
    static func response(toHead head: String, render: () -> String, health: () -> Health = { .healthy }) -> [UInt8] {
        let requestLine = head.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = requestLine.split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return build(400, "Bad Request", "bad request\n")
        }
        let method = parts[0]
        let path = parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path == "/metrics" || path == "/healthz" else {
            return build(404, "Not Found", "not found: warren serves /metrics and /healthz\n")
        }
        guard method == "GET" || method == "HEAD" else {
            return build(405, "Method Not Allowed", "only GET and HEAD\n", extraHeaders: ["Allow: GET, HEAD"])
        }
        if path == "/healthz" {
            switch health() {
            case .healthy: return build(200, "OK", "ok\n", headOnly: method == "HEAD")
            case .unhealthy(let why): return build(503, "Service Unavailable", why + "\n", headOnly: method == "HEAD")
            }
        }
        return build(200, "OK", render(), contentType: "text/plain; version=0.0.4; charset=utf-8", headOnly: method == "HEAD")
    }

    static func build(_ code: Int, _ reason: String, _ body: String, contentType: String = "text/plain; charset=utf-8", extraHeaders: [String] = [], headOnly: Bool = false) -> [UInt8] {
        let bytes = Array(body.utf8)
        var head = "HTTP/1.1 \(code) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(bytes.count)\r\nConnection: close\r\n"
        for header in extraHeaders { head += header + "\r\n" }
        head += "\r\n"
        return Array(head.utf8) + (headOnly ? [] : bytes)
    }

    private func respond(_ connection: Int32, _ code: Int, _ reason: String, _ body: String, until deadline: ContinuousClock.Instant) {
        send(connection, Self.build(code, reason, body), until: deadline)
    }

    /// Reads up to the blank line that ends the head; nil when the client sent
    /// more than 8 KiB of head, went away or was too slow.
    private func readHead(_ connection: Int32, until deadline: ContinuousClock.Instant) -> String? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        let end: [UInt8] = [13, 10, 13, 10]
        while data.count < 8192 {
            guard Self.wait(connection, for: POLLIN, until: deadline) else { return nil }
            let n = recv(connection, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { continue }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            data += buffer[..<n]
            if data.count >= 4, (0...(data.count - 4)).contains(where: { Array(data[$0..<$0 + 4]) == end }) {
                return String(decoding: data, as: UTF8.self)
            }
        }
        return nil
    }

    private func send(_ connection: Int32, _ bytes: [UInt8], until deadline: ContinuousClock.Instant) {
        var offset = 0
        while offset < bytes.count {
            guard Self.wait(connection, for: POLLOUT, until: deadline) else { return }
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) { continue }
            guard n > 0 else { return }
            offset += n
        }
    }

    private static func bind(_ address: Address) throws -> Int32 {
        guard let family = Address.numericFamily(address.host) else { throw MetricsServerError("\(address.host) is not a numeric address") }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw MetricsServerError("cannot create a socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let result: Int32
        if family == AF_INET {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = UInt16(address.port).bigEndian
            inet_pton(AF_INET, address.host, &sin.sin_addr)
            result = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        } else {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = UInt16(address.port).bigEndian
            inet_pton(AF_INET6, address.host, &sin6.sin6_addr)
            result = withUnsafePointer(to: &sin6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        }
        guard result == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw MetricsServerError("cannot listen on \(address) for metrics: \(reason)")
        }
        return fd
    }
}

public struct MetricsServerError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
