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
    /// Every probe of the process runs on one shared thread (`ProbeLoop`):
    /// a non-blocking connect (at most `min(wait, 5)` seconds per address),
    /// then `poll()` until the far end closes or `wait` is over. A probe never
    /// holds a thread of its own or one of the cooperative pool, so a thousand
    /// tunnels probing at once cost one thread, and the supervisor's actors keep
    /// running while probes wait.
    public static func probe(_ endpoint: Forward.Endpoint, wait: Double) async -> ProbeResult {
        let addresses = Self.addresses(of: endpoint)
        return await withCheckedContinuation { continuation in
            ProbeLoop.shared.submit(ProbeLoop.Request(
                addresses: addresses, endpoint: "\(endpoint)", connectTimeout: min(wait, 5), wait: max(0, wait),
                continuation: continuation))
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

    /// Where a forward's local side can be reached; empty when its name does
    /// not resolve (the probe then reports `notListening`).
    static func addresses(of endpoint: Forward.Endpoint) -> [NetworkCheck.Address] {
        switch endpoint {
        case .unix(let path):
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return [] }
            withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                for (i, b) in bytes.enumerated() { buffer[i] = b }
            }
            let storage = withUnsafeBytes(of: &address) { Array($0) }
            return [NetworkCheck.Address(family: AF_UNIX, storage: storage, text: path)]
        case .tcp(let host, let port):
            // The listen side of a forward: an address of this machine, so
            // getaddrinfo answers from /etc/hosts or the literal, not DNS.
            let name: String
            switch host {
            case nil, "localhost", "*", "0.0.0.0": name = "127.0.0.1"
            case "::": name = "::1"
            case let h?: name = h
            }
            guard case .success(let addresses) = NetworkCheck.resolve(host: name, port: port) else { return [] }
            return addresses
        }
    }
}
