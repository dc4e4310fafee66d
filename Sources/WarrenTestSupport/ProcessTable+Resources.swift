import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a process was given, read from /proc: what tests of a child's
/// inheritance (limits, environment) check.
extension ProcessTable {
    /// Soft and hard limit on open files ("Max open files" in /proc/PID/limits).
    public static func openFileLimit(_ pid: pid_t) -> (soft: UInt64, hard: UInt64)? {
        guard let text = read("/proc/\(pid)/limits"),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") }) else { return nil }
        let fields = line.dropFirst("Max open files".count).split(separator: " ")
        guard fields.count >= 2, let soft = UInt64(fields[0]), let hard = UInt64(fields[1]) else { return nil }
        return (soft, hard)
    }

    /// How many descriptors `pid` has open (entries of /proc/PID/fd).
    public static func openFileCount(_ pid: pid_t) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }

    /// The environment `pid` was started with (/proc/PID/environ), by name.
    public static func environment(_ pid: pid_t) -> [String: String]? {
        guard let raw = read("/proc/\(pid)/environ") else { return nil }
        var out: [String: String] = [:]
        for entry in raw.split(separator: "\0", omittingEmptySubsequences: true) {
            guard let equals = entry.firstIndex(of: "=") else { continue }
            out[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        }
        return out
    }
}
