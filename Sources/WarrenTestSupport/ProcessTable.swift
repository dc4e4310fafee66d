import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads the process table from /proc.
///
/// On these machines PID 1 does not reap orphans, so a dead orphan stays a
/// zombie and `kill -0` still succeeds on it: ask for the state instead.
public enum ProcessTable {
    /// One line of /proc/PID/stat, the fields tests need.
    public struct Entry: Sendable, Hashable {
        public let pid: pid_t
        public let parent: pid_t
        /// `R`, `S`, `D`, `T` (stopped), `Z` (zombie), ...
        public let state: Character
        /// The short command name (`comm`).
        public let name: String
        /// Clock ticks after boot at which it started: with `pid`, its identity.
        public let startTime: UInt64

        /// Whether it has exited and waits to be reaped.
        public var isZombie: Bool { state == "Z" || state == "X" }
    }

    /// The entry for `pid`, or `nil` if there is no such process.
    public static func entry(_ pid: pid_t) -> Entry? {
        guard let text = read("/proc/\(pid)/stat") else { return nil }
        return parse(stat: text)
    }

    /// Every process on the machine.
    public static func all() -> [Entry] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap { pid_t($0) }.compactMap(entry)
    }

    /// The direct children of `pid`.
    public static func childrenOf(_ pid: pid_t) -> [pid_t] {
        all().filter { $0.parent == pid }.map(\.pid)
    }

    /// Every descendant of `pid`, parents before their children.
    public static func descendants(of pid: pid_t) -> [Entry] {
        let table = all()
        var found: [Entry] = []
        var frontier = [pid]
        while let next = frontier.popLast() {
            let kids = table.filter { $0.parent == next }
            found.append(contentsOf: kids)
            frontier.append(contentsOf: kids.map(\.pid))
        }
        return found
    }

    /// Whether `pid` is a zombie (`State: Z` in /proc/PID/status).
    public static func isZombie(_ pid: pid_t) -> Bool {
        entry(pid)?.isZombie ?? false
    }

    /// Whether a process with this pid exists at all, zombies included.
    public static func exists(_ pid: pid_t) -> Bool {
        entry(pid) != nil
    }

    /// The command line of `pid`, arguments joined by spaces (empty for a zombie).
    public static func cmdline(_ pid: pid_t) -> String? {
        guard let raw = read("/proc/\(pid)/cmdline") else { return nil }
        return raw.split(separator: "\0", omittingEmptySubsequences: true).joined(separator: " ")
    }

    /// Processes whose command line contains `text` (zombies have none, so never match).
    public static func processes(withCmdlineContaining text: String) -> [(pid: pid_t, cmdline: String)] {
        let me = getpid()
        return all().compactMap { entry in
            guard entry.pid != me, let line = cmdline(entry.pid), line.contains(text) else { return nil }
            return (entry.pid, line)
        }
    }

    /// Sends `sig` to `entry.pid` only if that pid still names the same process
    /// (same start time), so a recycled pid is never signalled.
    @discardableResult
    public static func signal(_ entry: Entry, _ sig: Int32) -> Bool {
        guard let now = self.entry(entry.pid), now.startTime == entry.startTime else { return false }
        return kill(entry.pid, sig) == 0
    }

    static func parse(stat text: String) -> Entry? {
        // "pid (comm) S ppid ..." — comm may hold spaces and parentheses.
        guard let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")"),
              let pid = pid_t(text[..<open].trimmingCharacters(in: .whitespaces))
        else { return nil }
        let name = String(text[text.index(after: open)..<close])
        let rest = text[text.index(after: close)...].split(separator: " ")
        // rest[0] is field 3 (state); field 22 (starttime) is rest[19].
        guard rest.count > 19, let state = rest[0].first, let parent = pid_t(rest[1]),
              let start = UInt64(rest[19])
        else { return nil }
        return Entry(pid: pid, parent: parent, state: state, name: name, startTime: start)
    }

    /// The whole of a /proc file. Foundation's `String(contentsOfFile:)` stops
    /// after one page (4050 bytes measured here) on these files, which report
    /// size 0: read until EOF rather than trusting stat.
    static func read(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.readToEnd() else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
