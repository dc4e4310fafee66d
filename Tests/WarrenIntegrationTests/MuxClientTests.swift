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
}
