import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What warren's connections have cost this machine's address on each sshd,
/// as sshd's PerSourcePenalties (OpenSSH 9.8+, on by default) count it: a
/// failed login adds 5 s, a connection that ends before any login 1 s; the
/// sum drains by a second a second, and past 15 s (`min`) the address is
/// blocked. Every tunnel, shard and command on this machine shares the
/// address, so the estimate is kept in one file per state directory
/// (`penalties`, locked while it is read and written), shared by `warren run`
/// and the commands; without a writable file it is kept in this process.
///
/// A login that may fail waits until its hosts have room for one more
/// failure under `limit` (10 s: two failures in a row, never the third).
public actor PenaltyBudget {
    public static let failedLogin = 5.0
    public static let abandonedConnection = 1.0
    /// The estimated penalty a host may carry after a failed login: under
    /// sshd's 15 s by one more failure (another process's, a doctor run).
    public let limit: Double
    private let path: String?
    /// host:port -> (level in seconds, Unix time it was taken).
    private var memory: [String: (level: Double, at: Double)] = [:]

    /// - Parameter stateDir: where the shared file lives; nil keeps it in this process.
    public init(stateDir: String? = nil, limit: Double = 10 - 0.5) {
        self.path = stateDir.map { ($0 as NSString).appendingPathComponent("penalties") }
        self.limit = limit
    }

    /// Waits until every one of `hosts` has room for a failed login, then counts one.
    public func reserveFailedLogin(on hosts: [String]) async {
        while true {
            // Room when the failure would leave every host at `limit` or below.
            let wait = update { levels in
                let wait = hosts.map { (levels[$0] ?? 0) + Self.failedLogin - limit }.max() ?? 0
                if wait <= 0 { for host in hosts { levels[host, default: 0] += Self.failedLogin } }
                return wait
            }
            if wait <= 0 { return }
            try? await Task.sleep(for: .milliseconds(Int(wait * 1000) + 50))
            if Task.isCancelled { return }
        }
    }

    /// The login succeeded (or never reached a login): take back what was
    /// counted for it, less `keeping` (what the connection cost all the same).
    public func refundFailedLogin(on hosts: [String], keeping: Double = 0) {
        update { levels in
            for host in hosts { levels[host] = max(0, (levels[host] ?? 0) - (Self.failedLogin - keeping)) }
            return 0
        }
    }

    /// A failure that was not reserved (a login that used to work).
    public func chargeFailedLogin(on hosts: [String]) {
        update { levels in for host in hosts { levels[host, default: 0] += Self.failedLogin }; return 0 }
    }

    /// Counts a connection that ends before any login (a bare TCP connect or a banner read).
    public func chargeAbandonedConnection(on host: String) {
        update { levels in levels[host, default: 0] += Self.abandonedConnection; return 0 }
    }

    /// Reads the levels (drained to now), lets `body` change them, writes them back.
    @discardableResult
    private func update<T>(_ body: (inout [String: Double]) -> T) -> T {
        let now = Date().timeIntervalSince1970
        guard let path, let fd = Self.openLocked(path) else {
            var levels = memory.mapValues { max(0, $0.level - (now - $0.at)) }
            let result = body(&levels)
            memory = levels.filter { $0.value > 0 }.mapValues { ($0, now) }
            return result
        }
        defer { flock(fd, LOCK_UN); close(fd) }
        var levels = Self.parse(Self.readAll(fd), now: now)
        let result = body(&levels)
        let text = levels.filter { $0.value > 0 }.sorted { $0.key < $1.key }
            .map { "\($0.key) \(String(format: "%.3f", $0.value)) \(String(format: "%.3f", now))\n" }.joined()
        _ = ftruncate(fd, 0)
        _ = lseek(fd, 0, SEEK_SET)
        _ = text.withCString { write(fd, $0, strlen($0)) }
        return result
    }

    /// `host:port level time` per line; levels drained to `now`.
    static func parse(_ text: String, now: Double) -> [String: Double] {
        var levels: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 3, let level = Double(parts[1]), let at = Double(parts[2]) else { continue }
            let left = level - max(0, now - at)
            if left > 0 { levels[String(parts[0])] = min(left, 600) }
        }
        return levels
    }

    /// The file, opened without following a link and locked; nil when it cannot be.
    private static func openLocked(_ path: String) -> Int32? {
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid() || info.st_uid == 0,
            info.st_size < 65536, flock(fd, LOCK_EX) == 0
        else {
            close(fd)
            return nil
        }
        return fd
    }

    private static func readAll(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 65536 {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
