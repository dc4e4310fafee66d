import Foundation
import Synchronization
import WarrenCore

/// Adds and removes a shared connection's forwards by talking to its ssh
/// master over the control socket (OpenSSH's PROTOCOL.mux, version 4), as
/// `ssh -O forward` and `ssh -O cancel` do, without starting a process for it.
/// At a thousand tunnels over fifty masters, one `ssh -O forward` per tunnel
/// cost 7-10 ms of CPU each (loading ssh, reading its config), most of the
/// shared mode's start; a request here is a few hundred bytes on a socket.
///
/// Each packet is a length (u32, big-endian) and a body; strings are a length
/// and bytes. Both sides send HELLO (type, version 4) first; then each request
/// (type, request id, ...) gets one reply carrying the same id.
enum MuxClient {
    static let version: UInt32 = 4

    enum Message: UInt32 {
        case hello = 0x0000_0001
        case openForward = 0x1000_0006
        case closeForward = 0x1000_0007
        case newStdioForward = 0x1000_0008
        case ok = 0x8000_0001
        case permissionDenied = 0x8000_0002
        case failure = 0x8000_0003
        case sessionOpened = 0x8000_0006
        case remotePort = 0x8000_0007
    }

    /// `PORT_STREAMLOCAL`: the host field is a unix socket path.
    static let streamLocal = UInt32(bitPattern: -2)

    /// A request's body for one forward (after type and id), as ssh's own client
    /// builds it from the same forward in an ssh_config.
    static func body(_ forward: Forward) -> [UInt8] {
        var out: [UInt8] = []
        let type: UInt32 = switch forward.kind {
        case .local: 1
        case .remote: 2
        case .dynamic: 3
        }
        put(type, into: &out)
        let (listenHost, listenPort) = fields(forward.listen)
        put(listenHost, into: &out)
        put(listenPort, into: &out)
        // A dynamic forward has no target; ssh's own client names it "socks"
        // (readconf.c), and the master refuses a listener without a host
        // (channels.c: "No forward host name"), so an empty one never opens.
        let (connectHost, connectPort) = forward.target.map(fields) ?? (forward.kind == .dynamic ? "socks" : "", 0)
        put(connectHost, into: &out)
        put(connectPort, into: &out)
        return out
    }

    static func fields(_ endpoint: Forward.Endpoint) -> (String, UInt32) {
        switch endpoint {
        case .tcp(let host, let port): return (host ?? "", UInt32(port))
        case .unix(let path): return (path, streamLocal)
        }
    }

    /// One packet: the body's length, then the body.
    static func packet(_ type: Message, id: UInt32?, _ body: [UInt8] = []) -> [UInt8] {
        var payload: [UInt8] = []
        put(type.rawValue, into: &payload)
        if let id { put(id, into: &payload) }
        payload += body
        var out: [UInt8] = []
        put(UInt32(payload.count), into: &out)
        return out + payload
    }

    static func put(_ value: UInt32, into out: inout [UInt8]) {
        out += [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    static func put(_ text: String, into out: inout [UInt8]) {
        let bytes = Array(text.utf8)
        put(UInt32(bytes.count), into: &out)
        out += bytes
    }

    /// What the master answered to one request.
    enum Answer: Equatable {
        case ok
        /// It refused, in its words.
        case refused(String)
    }

    /// Reads one reply body: (type, id, the rest).
    static func parse(_ body: [UInt8]) -> (type: UInt32, id: UInt32, rest: ArraySlice<UInt8>)? {
        guard body.count >= 8 else { return nil }
        return (u32(body[0..<4]), u32(body[4..<8]), body[8...])
    }

    static func answer(to id: UInt32, _ body: [UInt8]) -> Answer {
        guard let (type, replyID, rest) = parse(body), replyID == id else {
            return .refused("the master's reply is out of sequence or malformed")
        }
        switch Message(rawValue: type) {
        case .ok, .remotePort: return .ok
        case .failure, .permissionDenied:
            guard rest.count >= 4 else { return .refused("refused") }
            let length = Int(u32(rest.prefix(4)))
            let text = rest.dropFirst(4).prefix(length)
            return .refused(String(decoding: text, as: UTF8.self))
        default:
            return .refused(String(format: "unexpected reply 0x%08x", type))
        }
    }

    static func u32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Asks the master at `controlPath` to open (or close) each forward, in
    /// order, all within `timeout` seconds: one deadline for the whole
    /// exchange, not per read, so a listener that dribbles a byte at a time
    /// (a 200,000-byte length, then one byte every 10 s) is cut off at the
    /// deadline like one that says nothing. `abort` ends the exchange at once
    /// from another task (a stop). Blocking: call it off the cooperative pool.
    /// Returns ssh-like lines saying what failed; empty when all went well.
    static func request(_ forwards: [Forward], at controlPath: String, cancel: Bool, timeout: Double, abort: MuxAbort = MuxAbort()) -> [String] {
        let deadline = Deadline(seconds: timeout)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return ["cannot make a socket: \(String(cString: strerror(errno)))"] }
        defer { abort.detach(); close(fd) }
        guard abort.attach(fd) else { return ["stopped before asking the master on \(controlPath)"] }
        // connect(2) on a unix socket whose backlog is full waits up to SO_SNDTIMEO.
        var wait = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(controlPath.utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return ["the control path \(controlPath) is too long"] }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
            raw[path.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            return ["Control socket connect(\(controlPath)): \(String(cString: strerror(errno)))"]
        }
        func why() -> String {
            if abort.isAborted { return "stopped" }
            if deadline.passed { return "no whole answer within \(Self.seconds(timeout)) s" }
            return String(cString: strerror(errno))
        }
        // The master speaks first; then ours.
        guard let hello = readPacket(fd, deadline), let (type, theirs, _) = parse(hello), type == Message.hello.rawValue, theirs == version else {
            return ["the master did not say hello on \(controlPath) (\(why()))"]
        }
        var ours: [UInt8] = []
        put(version, into: &ours)
        guard writeAll(fd, packet(.hello, id: nil, ours), deadline) else { return ["cannot write to \(controlPath): \(why())"] }
        var failures: [String] = []
        for (index, forward) in forwards.enumerated() {
            let id = UInt32(index + 1)
            guard writeAll(fd, packet(cancel ? .closeForward : .openForward, id: id, body(forward)), deadline) else {
                return failures + ["cannot write to \(controlPath): \(why())"]
            }
            guard let reply = readPacket(fd, deadline) else {
                return failures + ["the master on \(controlPath) did not answer for \(forward) (\(why()))"]
            }
            if case .refused(let why) = answer(to: id, reply) {
                failures.append("\(cancel ? "cancel" : "forwarding") request failed for \(forward): \(why)")
            }
        }
        return failures
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))" : "\(value)"
    }

    /// When the whole exchange must be over.
    struct Deadline {
        let end: ContinuousClock.Instant

        init(seconds: Double) { end = .now + .milliseconds(Int(seconds * 1000)) }

        var passed: Bool { ContinuousClock.now >= end }

        /// Waits until `fd` is ready for `events`; false once the deadline passed.
        func wait(_ fd: Int32, for events: Int32) -> Bool {
            while true {
                let left = end - .now
                guard left > .zero else { return false }
                let ms = Int32(clamping: max(1, Int(left.components.seconds) * 1000 + Int(left.components.attoseconds / 1_000_000_000_000_000)))
                var entry = pollfd(fd: fd, events: Int16(events), revents: 0)
                let n = poll(&entry, 1, ms)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { return false }
                if n > 0 { return true }
            }
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], _ deadline: Deadline) -> Bool {
        var sent = 0
        while sent < bytes.count {
            guard deadline.wait(fd, for: Int32(POLLOUT)) else { return false }
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }

    private static func readExactly(_ fd: Int32, _ count: Int, _ deadline: Deadline) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            guard deadline.wait(fd, for: Int32(POLLIN)) else { return nil }
            let n = out[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n > 0 else { return nil }
            got += n
        }
        return out
    }

    /// One packet's body; nil at end of file, at the deadline or on a silly length.
    private static func readPacket(_ fd: Int32, _ deadline: Deadline) -> [UInt8]? {
        guard let header = readExactly(fd, 4, deadline) else { return nil }
        let length = Int(u32(header[...]))
        guard length <= 256 * 1024 else { return nil }
        return readExactly(fd, length, deadline)
    }
}

/// Ends a control-socket exchange from another task: `shutdown(2)` wakes the
/// thread blocked in it at once. The descriptor is only shut down while the
/// exchange holds it, so a number reused after `close` is never touched.
final class MuxAbort: Sendable {
    private struct State {
        var fd: Int32?
        var aborted = false
    }
    private let state = Mutex(State())

    var isAborted: Bool { state.withLock { $0.aborted } }

    func abort() {
        state.withLock { state in
            state.aborted = true
            if let fd = state.fd { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// false when aborted already: the exchange must not start.
    func attach(_ fd: Int32) -> Bool {
        state.withLock { state in
            guard !state.aborted else { return false }
            state.fd = fd
            return true
        }
    }

    func detach() { state.withLock { $0.fd = nil } }
}
