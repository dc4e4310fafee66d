import Foundation
import WarrenCore

/// Talks to systemd through `$NOTIFY_SOCKET` (the sd_notify protocol: one
/// datagram per message, `KEY=VALUE` lines, to a unix datagram socket; a name
/// starting with `@` is in the abstract namespace). Without the variable every
/// call does nothing, so warren behaves the same outside systemd.
public final class SystemdNotifier: Sendable {
    /// The socket's address as given (`/run/systemd/notify` or `@name`).
    public let socketPath: String?
    /// Half of `$WATCHDOG_USEC` when the watchdog is on for this process.
    public let watchdogInterval: Duration?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, pid: Int32 = getpid()) {
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        socketPath = path
        // WATCHDOG_PID, when set, names the process the watchdog is meant for.
        if path != nil, let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0,
            environment["WATCHDOG_PID"].flatMap(Int32.init).map({ $0 == pid }) ?? true
        {
            watchdogInterval = .microseconds(Int64(usec / 2))
        } else {
            watchdogInterval = nil
        }
    }

    public var isEnabled: Bool { socketPath != nil }

    /// Sends one message; returns whether the datagram was sent.
    @discardableResult
    public func notify(_ message: String) -> Bool {
        guard let socketPath else { return false }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(socketPath.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        // An abstract name's length is exact: no terminating NUL counts.
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes[0] == 0 ? 0 : 1))
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let payload = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                payload.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sockaddrPointer, length) }
            }
        }
        return sent == payload.count
    }

    /// The message for a supervisor phase: READY=1 once the tunnels are started
    /// and after a reload; RELOADING=1 with MONOTONIC_USEC (systemd 253 and
    /// later want it to match the reload to its request); STOPPING=1.
    public static func message(for phase: SupervisorPhase, monotonicMicroseconds: UInt64) -> String {
        switch phase {
        case .started(let tunnels):
            return "READY=1\nSTATUS=supervising \(tunnels) tunnel\(tunnels == 1 ? "" : "s")"
        case .reloading:
            return "RELOADING=1\nMONOTONIC_USEC=\(monotonicMicroseconds)\nSTATUS=reloading the config"
        case .reloaded:
            return "READY=1\nSTATUS=reloaded"
        case .stopping:
            return "STOPPING=1\nSTATUS=stopping the tunnels"
        }
    }

    /// A one-line `STATUS=` for `systemctl status`: how many tunnels are up.
    public static func statusLine(_ statuses: [String: TunnelStatus]) -> String {
        let running = statuses.values.filter { $0.state != .stopped && $0.state != .otherShard }
        let up = running.filter { $0.state == .up }.count
        var text = "STATUS=\(up)/\(running.count) tunnels up"
        let down = running.filter { $0.state == .backoff || $0.state == .failed }.map(\.name).sorted()
        if !down.isEmpty { text += "; down: " + down.joined(separator: ", ") }
        return text
    }

    /// Sends the message for `phase`.
    public func notify(_ phase: SupervisorPhase) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        notify(Self.message(for: phase, monotonicMicroseconds: UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000))
    }
}
