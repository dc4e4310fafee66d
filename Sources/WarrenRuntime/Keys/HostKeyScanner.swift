import Foundation
import WarrenCore

/// Asks a host for its public host keys with the system `ssh-keyscan`.
public enum HostKeyScanner {
    /// What a scan found.
    public struct Scan: Sendable {
        public var keys: [HostKey]
        /// The SSH banner ssh-keyscan saw (`SSH-2.0-OpenSSH_9.2p1 ...`), if any.
        public var banner: String?
        /// Why nothing came back, in ssh-keyscan's words or warren's; nil when keys came.
        public var problem: String?

        public init(keys: [HostKey], banner: String?, problem: String?) {
            self.keys = keys
            self.banner = banner
            self.problem = problem
        }
    }

    /// The host's keys, asked for one type at a time, as few as needed:
    /// ssh-keyscan makes one connection per key type, and each ends before a
    /// login, a second of sshd's PerSourcePenalties (OpenSSH 9.8+); asking
    /// for all five types cost 5 s. Ed25519 first (every OpenSSH since 6.5
    /// has one), the others only when it has none, or when `wanted` (a
    /// fingerprint pin) is not among the keys found.
    public static func scan(host: String, port: Int, timeout: Int, sshBinary: String? = nil, wanted: ((HostKey) -> Bool)? = nil) async -> Scan {
        let first = await scan(host: host, port: port, timeout: timeout, sshBinary: sshBinary, types: "ed25519")
        let found = first.keys.contains { wanted?($0) ?? true }
        // Nothing answered at all: asking for other types would only cost more.
        if found || (first.keys.isEmpty && first.banner == nil) { return first }
        let rest = await scan(host: host, port: port, timeout: timeout, sshBinary: sshBinary, types: "ecdsa,rsa")
        return rest.keys.isEmpty ? first : Scan(keys: first.keys + rest.keys, banner: first.banner ?? rest.banner, problem: nil)
    }

    /// `ssh-keyscan -T TIMEOUT -t TYPES -p PORT HOST`. Never throws: a failure is a scan
    /// with no keys and a `problem`.
    static func scan(host: String, port: Int, timeout: Int, sshBinary: String?, types: String) async -> Scan {
        let tool = ToolCommand.openSSHTool("ssh-keyscan", sshBinary: sshBinary)
        let result: ToolResult
        do {
            result = try await ToolCommand.run(tool, ["-T", String(timeout), "-t", types, "-p", String(port), host], timeout: Double(timeout) * 4 + 5)
        } catch {
            return Scan(keys: [], banner: nil, problem: "cannot run \(tool): \(error)")
        }
        let keys = HostKeyCheck.parseKeyLines(result.stdout)
        // stderr: `# HOST:PORT SSH-2.0-...` per key type tried, and errors.
        let lines = result.stderr.split(separator: "\n").map(String.init)
        let banner = lines.lazy.compactMap { line -> String? in
            guard line.hasPrefix("# "), let range = line.range(of: " SSH-") else { return nil }
            return String(line[line.index(after: range.lowerBound)...])
        }.first
        if !keys.isEmpty { return Scan(keys: keys, banner: banner, problem: nil) }
        let errors = lines.filter { !$0.hasPrefix("#") && !$0.isEmpty }
        var problem = errors.last ?? "no answer from \(host) port \(port) within \(timeout) s (connection refused, dropped, or not an SSH server)"
        if result.timedOut { problem = "ssh-keyscan ran past its time limit" }
        return Scan(keys: [], banner: banner, problem: problem)
    }
}

/// A fingerprint pin that could not be turned into a trusted key.
public struct HostKeyResolutionError: Error, CustomStringConvertible, Sendable {
    /// `host_key_changed` when the host offers other keys; `host_key_unknown`
    /// when it could not be asked.
    public var kind: FailureKind
    public var message: String
    public var description: String { message }
}

/// Turns `host_key = "SHA256:..."` pins into keys before known_hosts is
/// written: a key already recorded under the host's alias whose fingerprint
/// matches is reused; otherwise the host is scanned and only a key with the
/// pinned fingerprint is trusted. ssh then checks that key as usual.
public enum HostKeyResolver {
    public typealias Scanner = @Sendable (_ host: String, _ port: Int, _ timeout: Int) async -> HostKeyScanner.Scan

    /// The tunnel with every fingerprint pin resolved into `hostKeys`.
    /// - Parameter knownHosts: the tunnel's current known_hosts text, if any.
    public static func resolve(
        _ tunnel: TunnelConfig, knownHosts: String?, sshBinary: String? = nil,
        scanner: Scanner? = nil
    ) async throws(HostKeyResolutionError) -> TunnelConfig {
        var resolved = tunnel
        for (index, (alias, _, endpoint)) in tunnel.endpointsInOrder.enumerated() where !endpoint.unresolvedFingerprints.isEmpty {
            let known = HostKeyCheck.parseKeyLines(knownHosts ?? "", host: alias)
            var result = HostKeyCheck.resolve(endpoint.unresolvedFingerprints, known: known, offered: [])
            var offered: [HostKey] = []
            var problem: String?
            if !result.unmatched.isEmpty {
                let pins = endpoint.unresolvedFingerprints
                let scanned: HostKeyScanner.Scan
                if let scanner {
                    scanned = await scanner(endpoint.host, endpoint.port, tunnel.connectTimeout)
                } else {
                    scanned = await HostKeyScanner.scan(host: endpoint.host, port: endpoint.port, timeout: tunnel.connectTimeout, sshBinary: sshBinary) { key in
                        HostKeyCheck.resolve(pins, known: [], offered: [key]).unmatched.count < pins.count
                    }
                }
                offered = scanned.keys
                problem = scanned.problem
                result = HostKeyCheck.resolve(endpoint.unresolvedFingerprints, known: known, offered: offered)
            }
            if !result.unmatched.isEmpty {
                let pins = result.unmatched.map(\.description).joined(separator: ", ")
                let name = "\(alias) (\(endpoint.host) port \(endpoint.port))"
                if offered.isEmpty {
                    // ssh-keyscan dials directly: a host reachable only through its
                    // jump hops cannot be fetched this way.
                    let behind = index > 0
                        ? "; warren fetches keys directly from this machine, so a host reachable only through its jump hop(s) must be pinned by its full key (host_key = \"ssh-ed25519 AAAA...\")"
                        : ""
                    // A host dialled directly that does not answer at all is a
                    // connection failure (retried with backoff), not a key problem.
                    let unreachable = index == 0
                        ? await NetworkCheck.offPool { NetworkCheck.unreachableKind(host: endpoint.host, port: endpoint.port, timeout: Double(tunnel.connectTimeout)) }
                        : nil
                    throw HostKeyResolutionError(
                        kind: unreachable ?? .hostKeyUnknown,
                        message: "cannot check the pinned fingerprint \(pins) of \(name): ssh-keyscan got no key: \(problem ?? "no answer")\(behind)")
                }
                throw HostKeyResolutionError(
                    kind: .hostKeyChanged,
                    message: "\(name) offers \(offered.map(HostKeyCheck.describe).joined(separator: ", ")); none has the pinned fingerprint \(pins). Host key verification failed: warren does not trust it")
            }
            var endpoint = endpoint
            for key in result.keys where !endpoint.hostKeys.contains(key) { endpoint.hostKeys.append(key) }
            if index < tunnel.jumps.count { resolved.jumps[index] = endpoint } else { resolved.endpoint = endpoint }
        }
        return resolved
    }
}
