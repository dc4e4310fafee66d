import Foundation
import WarrenCore

/// What a connection through a local forward found.
public enum ProbeResult: Sendable, Equatable {
    /// The connection was accepted and stayed open (or the target spoke first).
    case reachable
    /// ssh accepted the connection and then closed it: the bastion could not
    /// open a channel to the target.
    case unreachable(String)
    /// Nothing listens on the forward's local side.
    case notListening(String)
}

/// Probes a target through a local forward. A connection to a dead target is
/// accepted by ssh and then closed once the bastion reports the channel failed;
/// a live target keeps it open. That holds for any TCP protocol.
public enum TargetProbe {
    /// - Parameter wait: how long the connection must stay open to count as reachable.
    ///
    /// A probe blocks in connect() and poll() for up to `wait` seconds, so it
    /// runs on a thread of its own. On a Dispatch queue it held one of the
    /// global pool's threads, the same threads that run every task and actor:
    /// with fifty tunnels coming up, their probes took every one of them and
    /// the supervisor stalled for seconds at a time (Dispatch adds only about
    /// one thread a second), holding back the next starts (`make bench`).
    public static func probe(_ endpoint: Forward.Endpoint, wait: Double) async -> ProbeResult {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: probeBlocking(endpoint, wait: wait)) }
            thread.name = "warren-probe"
            thread.start()
        }
    }

    /// Probes every endpoint in turn: `.answered` when each target answers,
    /// else the first failure and how long ssh took to close the connection.
    public static func probeAll(_ endpoints: [Forward.Endpoint], hold: Double) async -> ProbeOutcome {
        for endpoint in endpoints {
            let started = ContinuousClock.now
            switch await probe(endpoint, wait: hold) {
            case .reachable: continue
            case .unreachable(let message):
                return .failed(message: message, closedAfter: (ContinuousClock.now - started) / .seconds(1))
            case .notListening(let message):
                return .failed(message: message, closedAfter: nil)
            }
        }
        return .answered
    }

    static func probeBlocking(_ endpoint: Forward.Endpoint, wait: Double) -> ProbeResult {
        guard let socket = Socket.connect(to: endpoint, timeout: min(wait, 5)) else {
            return .notListening("nothing accepts connections on \(endpoint)")
        }
        defer { close(socket) }
        var pfd = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let ready = poll(&pfd, 1, Int32(wait * 1000))
        if ready <= 0 { return .reachable }
        var byte: UInt8 = 0
        let n = recv(socket, &byte, 1, Int32(MSG_PEEK))
        if n > 0 { return .reachable }
        return .unreachable("a connection through \(endpoint) was accepted and then closed: the bastion could not reach the target")
    }
}

/// Minimal blocking socket helpers for probes.
enum Socket {
    /// Connects with a timeout; returns the fd, or nil.
    static func connect(to endpoint: Forward.Endpoint, timeout: Double) -> Int32? {
        switch endpoint {
        case .unix(let path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return nil }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
                close(fd)
                return nil
            }
            withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                for (i, b) in bytes.enumerated() { buffer[i] = b }
            }
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            if result != 0 {
                close(fd)
                return nil
            }
            return fd
        case .tcp(let host, let port):
            let name: String
            switch host {
            case nil, "localhost", "*", "0.0.0.0": name = "127.0.0.1"
            case "::": name = "::1"
            case let h?: name = h
            }
            guard case .success(let addresses) = NetworkCheck.resolve(host: name, port: port) else { return nil }
            for address in addresses {
                if case .success(let fd) = NetworkCheck.connect(address, timeout: timeout) { return fd }
            }
            return nil
        }
    }
}
