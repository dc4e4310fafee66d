import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The address this machine uses as the source toward a host, for the bastion's
/// allowlist. A connected UDP socket asks the kernel's routing table without
/// sending a packet; NAT beyond this machine can change what the host sees.
public enum SourceAddress {
    public static func toward(host: String, port: Int) -> Result<String, SourceAddressError> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            return .failure(SourceAddressError(reason: "\(host) does not resolve: \(String(cString: gai_strerror(status)))"))
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return .failure(SourceAddressError(reason: "socket: \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            return .failure(SourceAddressError(reason: "no route to \(host): \(String(cString: strerror(errno)))"))
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return .failure(SourceAddressError(reason: "getsockname: \(String(cString: strerror(errno)))")) }
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let numeric = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST)
            }
        }
        guard numeric == 0 else { return .failure(SourceAddressError(reason: "getnameinfo failed")) }
        return .success(String(cString: buffer))
    }
}

public struct SourceAddressError: Error, Sendable {
    public var reason: String
}
