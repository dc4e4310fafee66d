import Foundation
import Testing
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// /proc/net/tcp is read to its end: Foundation's String(contentsOfFile:)
/// returns only its first ~4 KB (about 27 sockets), so on a busy machine a
/// listener further down was reported as absent.
@Suite struct ProcNetTests {
    @Test func aListenerBehindManySocketsIsSeen() throws {
        var fds: [Int32] = []
        defer { fds.forEach { close($0) } }
        var ports: [Int] = []
        for _ in 0..<150 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            try #require(fd >= 0)
            fds.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            try #require(bound == 0 && listen(fd, 1) == 0)
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
            }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        let size = try FileHandle(forReadingAtPath: "/proc/net/tcp").map { try $0.readToEnd()?.count ?? 0 } ?? 0
        #expect(size > 16384, "the table is longer than what a single read returns")
        #expect(ports.allSatisfy(FreePort.isListening), "every one of the 150 listeners is found")
    }
}
