import Foundation
import Testing
import WarrenCore
@testable import WarrenRuntime

/// The control-socket requests warren sends a shared master, byte for byte
/// as OpenSSH's own client (mux.c, `mux_client_forward`) builds them from the
/// same forward; and how the master's answers are read. The requests against
/// a real master are in SharedConnectionTests.
@Suite struct MuxClientTests {
    static func u32(_ value: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        MuxClient.put(value, into: &out)
        return out
    }

    static func string(_ text: String) -> [UInt8] { u32(UInt32(text.utf8.count)) + Array(text.utf8) }

    @Test func eachKindOfForwardIsEncodedAsSshDoes() {
        let local = Forward(kind: .local, listen: .tcp(host: "127.0.0.1", port: 15432), target: .tcp(host: "db.internal", port: 5432))
        #expect(MuxClient.body(local) == Self.u32(1) + Self.string("127.0.0.1") + Self.u32(15432) + Self.string("db.internal") + Self.u32(5432))
        // No bind address: an empty string, which the master reads as "none given".
        let defaultBind = Forward(kind: .local, listen: .tcp(host: nil, port: 8080), target: .tcp(host: "web", port: 80))
        #expect(MuxClient.body(defaultBind) == Self.u32(1) + Self.string("") + Self.u32(8080) + Self.string("web") + Self.u32(80))
        let remote = Forward(kind: .remote, listen: .tcp(host: nil, port: 9090), target: .tcp(host: "localhost", port: 3000))
        #expect(MuxClient.body(remote) == Self.u32(2) + Self.string("") + Self.u32(9090) + Self.string("localhost") + Self.u32(3000))
        let dynamic = Forward(kind: .dynamic, listen: .tcp(host: "127.0.0.1", port: 1080), target: nil)
        #expect(MuxClient.body(dynamic) == Self.u32(3) + Self.string("127.0.0.1") + Self.u32(1080) + Self.string("socks") + Self.u32(0))
        // A unix socket: the path in the host field, PORT_STREAMLOCAL (-2) as the port.
        let socket = Forward(kind: .local, listen: .unix(path: "/run/db.sock"), target: .unix(path: "/var/run/postgresql/.s.PGSQL.5432"))
        #expect(MuxClient.body(socket) == Self.u32(1) + Self.string("/run/db.sock") + Self.u32(0xffff_fffe)
            + Self.string("/var/run/postgresql/.s.PGSQL.5432") + Self.u32(0xffff_fffe))
    }

    @Test func aPacketIsItsLengthThenTypeIdAndBody() {
        #expect(MuxClient.packet(.openForward, id: 7, [0xaa]) == Self.u32(9) + Self.u32(0x1000_0006) + Self.u32(7) + [0xaa])
        #expect(MuxClient.packet(.hello, id: nil, Self.u32(4)) == Self.u32(8) + Self.u32(1) + Self.u32(4))
    }

    @Test func theMastersAnswersAreRead() {
        #expect(MuxClient.answer(to: 3, Self.u32(0x8000_0001) + Self.u32(3)) == .ok)
        #expect(MuxClient.answer(to: 3, Self.u32(0x8000_0007) + Self.u32(3) + Self.u32(40123)) == .ok, "a remote port allocated")
        #expect(MuxClient.answer(to: 3, Self.u32(0x8000_0003) + Self.u32(3) + Self.string("Port forwarding failed"))
            == .refused("Port forwarding failed"))
        #expect(MuxClient.answer(to: 3, Self.u32(0x8000_0002) + Self.u32(3) + Self.string("Permission denied")) == .refused("Permission denied"))
        #expect(MuxClient.answer(to: 3, Self.u32(0x8000_0001) + Self.u32(4)) != .ok, "another request's answer")
        #expect(MuxClient.answer(to: 3, [0, 1]) != .ok, "a truncated answer")
    }

    /// What `ssh -S CONTROL -W db.internal:5432` writes (mux.c,
    /// `mux_client_request_stdio_fwd`), preceded by our HELLO: the master
    /// reads packets one at a time, so both go in one write.
    @Test func aStdioForwardIsEncodedAsSshWDoes() {
        let hello = Self.u32(8) + Self.u32(1) + Self.u32(4)
        let tcp = MuxClient.stdioForwardRequest(id: 9, to: .tcp(host: "db.internal", port: 5432))
        let body = Self.u32(0x1000_0008) + Self.u32(9) + Self.string("") + Self.string("db.internal") + Self.u32(5432)
        #expect(tcp == hello + Self.u32(UInt32(body.count)) + body)
        let unix = MuxClient.stdioForwardRequest(id: 2, to: .unix(path: "/run/pg.sock"))
        let unixBody = Self.u32(0x1000_0008) + Self.u32(2) + Self.string("") + Self.string("/run/pg.sock") + Self.u32(0xffff_fffe)
        #expect(unix == hello + Self.u32(UInt32(unixBody.count)) + unixBody, "a unix target: PORT_STREAMLOCAL")
    }

    @Test func theMastersStdioAnswersAreReadFromItsStream() {
        let masterHello = Self.u32(8) + Self.u32(1) + Self.u32(4)
        let opened = Self.u32(12) + Self.u32(0x8000_0006) + Self.u32(9) + Self.u32(3)
        // Bytes arrive in pieces: nothing is decided before a whole packet.
        var buffer = masterHello + opened.prefix(5)
        var packets = MuxClient.takePackets(&buffer)
        #expect(packets?.count == 1 && MuxClient.stdioAnswer(to: 9, packets ?? []) == nil, "only the hello so far")
        buffer += opened.dropFirst(5)
        packets = MuxClient.takePackets(&buffer)
        #expect(buffer.isEmpty && MuxClient.stdioAnswer(to: 9, packets ?? []) == .opened(channel: 3))
        let refused = Self.u32(0x8000_0003) + Self.u32(9) + Self.string("Session open refused by peer")
        #expect(MuxClient.stdioAnswer(to: 9, [refused]) == .refused("Session open refused by peer"))
        #expect(MuxClient.stdioAnswer(to: 9, [Self.u32(1) + Self.u32(3)]) != nil, "another mux version is refused")
        #expect(MuxClient.stdioAnswer(to: 9, [Self.u32(0x8000_0006) + Self.u32(8) + Self.u32(3)]) != .opened(channel: 3), "another request's answer")
        var silly = Self.u32(1 << 30)
        #expect(MuxClient.takePackets(&silly) == nil, "an absurd length ends the connection")
    }

    /// The descriptor goes as SCM_RIGHTS with one byte, as `mm_send_fd`
    /// sends it; the receiver gets a working copy of the same socket.
    @Test func aDescriptorIsPassedWithOneByte() throws {
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        var passed: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &passed) == 0)
        defer { (pair + passed).forEach { close($0) } }
        #expect(MuxClient.sendDescriptor(passed[0], over: pair[0]) == 0)
        var byte: UInt8 = 9
        var control = [UInt8](repeating: 0, count: 64)
        let received: Int32 = withUnsafeMutablePointer(to: &byte) { bytePointer in
            var vector = iovec(iov_base: UnsafeMutableRawPointer(bytePointer), iov_len: 1)
            return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                control.withUnsafeMutableBytes { raw in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = raw.baseAddress
                    message.msg_controllen = raw.count
                    guard recvmsg(pair[1], &message, 0) == 1 else { return -1 }
                    return (raw.baseAddress! + MemoryLayout<cmsghdr>.size).load(as: Int32.self)
                }
            }
        }
        #expect(byte == 0 && received >= 0, "one zero byte and a descriptor")
        defer { close(received) }
        #expect(write(received, "x", 1) == 1)
        var got: UInt8 = 0
        #expect(read(passed[1], &got, 1) == 1 && got == UInt8(ascii: "x"), "the same socket")
    }
}
