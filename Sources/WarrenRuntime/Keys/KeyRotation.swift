import Foundation
import WarrenCore

/// A tunnel's key pairs over time, all beside its `identity_file` KEY:
/// KEY (current, the one ssh logs in with), KEY.next (made by `warren keygen
/// --tunnel NAME --next`, authorized by the admin beside the current one) and
/// KEY.previous (the one `warren rotate` replaced, kept until
/// `--forget-previous`). ssh reads the key file at each login, so a running
/// connection keeps the key it logged in with; the next login uses the new one.
public struct KeyPairs: Sendable {
    public let current: String

    public init(current: String) { self.current = current }

    public var next: String { current + ".next" }
    public var previous: String { current + ".previous" }

    /// The tunnel's key pairs; nil when no key file logs it in (an agent, a password).
    public init?(tunnel: TunnelConfig) {
        guard !tunnel.endpoint.identityFile.isEmpty else { return nil }
        self.current = tunnel.endpoint.identityFile
    }

    public static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// `credentials.key` in status.json: fingerprint (from KEY.pub) and age (KEY's modification time).
    public static func status(of key: String) -> KeyStatus {
        KeyStatus(
            file: key, fingerprint: fingerprint(of: key + ".pub"),
            created: modified(key).map { Date(timeIntervalSince1970: $0).formatted(.iso8601) },
            next: exists(key + ".next") ? fingerprint(of: key + ".next.pub") ?? key + ".next" : nil)
    }

    /// `SHA256:...` of a `.pub` file, as `ssh-keygen -lf` prints it.
    public static func fingerprint(of publicKeyFile: String) -> String? {
        publicKeyLine(publicKeyFile).flatMap { try? PublicKey.parse($0).get() }?.key.fingerprint
    }

    public static func publicKeyLine(_ file: String) -> String? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return line.isEmpty ? nil : line
    }

    /// Unix time of the file's last modification.
    public static func modified(_ path: String) -> Double? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return Double(info.st_mtim.tv_sec)
    }

    /// Days since the key was made, for `key_max_age_days`.
    public static func ageDays(of key: String, now: Date = Date()) -> Double? {
        modified(key).map { (now.timeIntervalSince1970 - $0) / 86400 }
    }

    /// Other tunnels of `config` that log in with the same key file: rotating it rotates theirs.
    public static func sharers(of tunnel: TunnelConfig, in config: WarrenConfig) -> [String] {
        config.tunnels.filter { $0.name != tunnel.name && $0.endpointsInOrder.contains { $0.endpoint.identityFile == tunnel.endpoint.identityFile } }.map(\.name)
    }

    // MARK: - Moving files

    public enum Failure: Error, CustomStringConvertible {
        case message(String)
        public var description: String {
            switch self { case .message(let text): return text }
        }
    }

    /// Makes the next key the current one and keeps the current one as
    /// previous. Each private key and `.pub` moves by rename(2) (atomic: ssh
    /// finds the old key or the new one, never none); the old pair is first
    /// linked to `.previous`, so nothing is lost if a step fails.
    public func promoteNext() throws(Failure) {
        for path in [next, next + ".pub", current, current + ".pub"] where !Self.exists(path) {
            throw .message("\(path) does not exist")
        }
        for path in [previous, previous + ".pub"] where Self.exists(path) {
            throw .message("\(path) still holds the key rotated out last time; once the bastion's admin removed its line, `--forget-previous` deletes it, then rotate again")
        }
        for (from, to) in [(current, previous), (current + ".pub", previous + ".pub")] {
            guard link(from, to) == 0 else { throw .message("cannot keep \(from) as \(to): \(String(cString: strerror(errno)))") }
        }
        // The private key first: for a moment ssh may offer the old .pub with
        // the new key, which it signs with the key itself (the .pub is a hint).
        for (from, to) in [(next, current), (next + ".pub", current + ".pub")] {
            guard rename(from, to) == 0 else { throw .message("cannot move \(from) to \(to): \(String(cString: strerror(errno)))") }
        }
    }

    /// Deletes the previous pair; the files it deleted.
    public func forgetPrevious() throws(Failure) -> [String] {
        var removed: [String] = []
        for path in [previous, previous + ".pub"] where Self.exists(path) {
            guard unlink(path) == 0 else { throw .message("cannot delete \(path): \(String(cString: strerror(errno)))") }
            removed.append(path)
        }
        return removed
    }
}
