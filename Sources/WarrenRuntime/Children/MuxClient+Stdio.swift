import Foundation
import WarrenCore

/// The request `ssh -S CONTROL -W HOST:PORT` sends (mux.c,
/// `mux_client_request_stdio_fwd`): the master opens a channel to the target
/// and copies bytes between it and the descriptor it is given, twice (as
/// stdin and stdout: one accepted socket here). It answers
/// `MUX_S_SESSION_OPENED` once the bastion confirmed the channel, or
/// `MUX_S_FAILURE` ("Session open refused by peer") when the bastion could
/// not reach the target. The control connection must stay open while the
/// channel lives: the master ends the channel when it closes, and closes it
/// when the channel ends.
extension MuxClient {
    /// What the master said to a stdio forward.
    enum StdioAnswer: Equatable {
        /// The bastion opened the channel (its number in the master).
        case opened(channel: UInt32)
        case refused(String)
    }

    /// Everything warren writes on a fresh control connection before the
    /// descriptors: our HELLO, then the request. The master reads packets one
    /// by one (exactly their length), so the request can follow the hello
    /// without waiting for the master's, and the descriptors follow the request.
    static func stdioForwardRequest(id: UInt32, to target: Forward.Endpoint) -> [UInt8] {
        var hello: [UInt8] = []
        put(version, into: &hello)
        var body: [UInt8] = []
        put("", into: &body)  // reserved
        let (host, port) = fields(target)
        put(host, into: &body)
        put(port, into: &body)
        return packet(.hello, id: nil, hello) + packet(.newStdioForward, id: id, body)
    }

    /// Takes whole packets off the front of `buffer`: each one's body.
    static func takePackets(_ buffer: inout [UInt8]) -> [[UInt8]]? {
        var out: [[UInt8]] = []
        while buffer.count >= 4 {
            let length = Int(u32(buffer[0..<4]))
            guard length <= 256 * 1024 else { return nil }
            guard buffer.count >= 4 + length else { break }
            out.append(Array(buffer[4..<(4 + length)]))
            buffer.removeFirst(4 + length)
        }
        return out
    }

    /// Reads the master's answer to stdio forward `id` from the packets it
    /// sent (its HELLO first); nil while it has not answered yet.
    static func stdioAnswer(to id: UInt32, _ packets: [[UInt8]]) -> StdioAnswer? {
        for body in packets {
            guard body.count >= 4 else { return .refused("a malformed packet from the master") }
            let type = u32(body[0..<4])
            if type == Message.hello.rawValue {
                guard body.count >= 8, u32(body[4..<8]) == version else { return .refused("the master speaks another mux version") }
                continue
            }
            guard let (_, replyID, rest) = parse(body), replyID == id else {
                return .refused("the master's reply is out of sequence or malformed")
            }
            switch Message(rawValue: type) {
            case .sessionOpened:
                return .opened(channel: rest.count >= 4 ? u32(rest.prefix(4)) : 0)
            default:
                if case .refused(let why) = answer(to: id, body) { return .refused(why) }
                return .refused(String(format: "unexpected reply 0x%08x", type))
            }
        }
        return nil
    }

    /// Sends `descriptor` over `socket` as one byte with SCM_RIGHTS, as
    /// OpenSSH's `mm_send_fd` does. Returns errno, or 0.
    static func sendDescriptor(_ descriptor: Int32, over socket: Int32) -> Int32 {
        var byte: UInt8 = 0
        let space = MemoryLayout<cmsghdr>.size + MemoryLayout<Int32>.size
        var control = [UInt8](repeating: 0, count: space + 16)
        return withUnsafeMutablePointer(to: &byte) { bytePointer in
            var vector = iovec(iov_base: UnsafeMutableRawPointer(bytePointer), iov_len: 1)
            return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                control.withUnsafeMutableBytes { raw in
                    let header = raw.baseAddress!.assumingMemoryBound(to: cmsghdr.self)
                    header.pointee.cmsg_len = MemoryLayout<cmsghdr>.size + MemoryLayout<Int32>.size
                    header.pointee.cmsg_level = SOL_SOCKET
                    header.pointee.cmsg_type = Int32(SCM_RIGHTS)
                    (raw.baseAddress! + MemoryLayout<cmsghdr>.size).storeBytes(of: descriptor, as: Int32.self)
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = raw.baseAddress
                    message.msg_controllen = (MemoryLayout<cmsghdr>.size + MemoryLayout<Int32>.size + 7) & ~7
                    while true {
                        let sent = sendmsg(socket, &message, Int32(MSG_NOSIGNAL))
                        if sent == 1 { return 0 }
                        if sent < 0 && errno == EINTR { continue }
                        return sent < 0 ? errno : EPIPE
                    }
                }
            }
        }
    }
}
