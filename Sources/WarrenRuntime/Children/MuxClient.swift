import Foundation
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
    /// order, waiting at most `timeout` seconds for each answer (a remote
    /// forward waits for the bastion). Blocking: call it off the cooperative
    /// pool. Returns ssh-like lines saying what failed; empty when all went well.
    static func request(_ forwards: [Forward], at controlPath: String, cancel: Bool, timeout: Double) -> [String] {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return ["cannot make a socket: \(String(cString: strerror(errno)))"] }
        defer { close(fd) }
        var wait = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
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
        // The master speaks first; then ours.
        guard let hello = readPacket(fd), let (type, theirs, _) = parse(hello), type == Message.hello.rawValue, theirs == version else {
            return ["the master did not say hello on \(controlPath)"]
        }
        var ours: [UInt8] = []
        put(version, into: &ours)
        guard writeAll(fd, packet(.hello, id: nil, ours)) else { return ["cannot write to \(controlPath): \(String(cString: strerror(errno)))"] }
        var failures: [String] = []
        for (index, forward) in forwards.enumerated() {
            let id = UInt32(index + 1)
            guard writeAll(fd, packet(cancel ? .closeForward : .openForward, id: id, body(forward))) else {
                return failures + ["cannot write to \(controlPath): \(String(cString: strerror(errno)))"]
            }
            guard let reply = readPacket(fd) else {
                return failures + ["the master did not answer for \(forward) (\(String(cString: strerror(errno))))"]
            }
            if case .refused(let why) = answer(to: id, reply) {
                failures.append("\(cancel ? "cancel" : "forwarding") request failed for \(forward): \(why)")
            }
        }
        return failures
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }

    private static func readExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            got += n
        }
        return out
    }

    /// One packet's body; nil at end of file, on a timeout or a silly length.
    private static func readPacket(_ fd: Int32) -> [UInt8]? {
        guard let header = readExactly(fd, 4) else { return nil }
        let length = Int(u32(header[...]))
        guard length <= 256 * 1024 else { return nil }
        return readExactly(fd, length)
    }
}
