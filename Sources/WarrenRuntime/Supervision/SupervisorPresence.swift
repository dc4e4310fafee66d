import Foundation
import WarrenCore

/// Whether a supervisor runs for a state directory, found without disturbing
/// it: the holder of `<state_dir>/warren.lock` is read from /proc/locks rather
/// than by trying the lock, because a check that held it even for a moment
/// could make a supervisor starting at that instant give up.
public struct SupervisorPresence: Sendable {
    /// The pid holding the lock; nil when nobody holds it or /proc/locks cannot say.
    public var lockHolder: Int32?
    /// Whether /proc/locks could be read at all.
    public var lockKnown: Bool
    /// status.json, when it exists and parses.
    public var report: StatusReport?
    /// Why the state directory could not be looked at (permissions), if so.
    public var problem: String?

    /// The running supervisor's pid, or nil when none runs.
    public var runningPid: Int32? {
        if let lockHolder { return lockHolder }
        // Without /proc/locks, trust a status that says running and whose pid lives.
        if !lockKnown, let report, report.running, ProcessInfoReader.isAlive(report.supervisorPid) {
            return report.supervisorPid
        }
        return nil
    }

    /// The status, if it was written by the running supervisor.
    public var liveReport: StatusReport? {
        guard let pid = runningPid, let report, report.supervisorPid == pid, report.running else { return nil }
        return report
    }

    public static func look(stateDir: String) -> SupervisorPresence {
        let lock = "\(stateDir)/warren.lock"
        var info = stat()
        if stat(lock, &info) != 0, errno != ENOENT {
            // Another user's state directory (0700): nothing here can be trusted.
            let reason = String(cString: strerror(errno))
            return SupervisorPresence(lockHolder: nil, lockKnown: false, report: nil, problem: "cannot look into \(stateDir) (\(reason)): run warren check as the user that runs warren")
        }
        let holder = lockHolder(path: lock)
        let report = FileManager.default.contents(atPath: "\(stateDir)/status.json").flatMap { try? StatusCoding.decode($0) }
        return SupervisorPresence(lockHolder: holder.pid, lockKnown: holder.known, report: report)
    }

    /// The pid holding an flock on `path`, from /proc/locks lines such as
    /// `1: FLOCK  ADVISORY  WRITE 7272 fe:00:16228494 0 EOF` (pid, then the
    /// device as hex major:minor and the inode).
    static func lockHolder(path: String) -> (pid: Int32?, known: Bool) {
        var info = stat()
        guard stat(path, &info) == 0 else { return (nil, true) }
        // procfs files report size 0, and String(contentsOfFile:) then reads
        // only the first 4 KiB; read to the end instead.
        guard let handle = FileHandle(forReadingAtPath: "/proc/locks"), let data = try? handle.readToEnd() else { return (nil, false) }
        try? handle.close()
        let text = String(decoding: data, as: UTF8.self)
        let dev = UInt64(info.st_dev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfff)
        let minor = (dev & 0xff) | ((dev >> 12) & ~0xff)
        return (holder(inLocks: text, major: major, minor: minor, inode: UInt64(info.st_ino)), true)
    }

    static func holder(inLocks text: String, major: UInt64, minor: UInt64, inode: UInt64) -> Int32? {
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // A blocked waiter is shown as `1: -> FLOCK ...`; it does not hold the lock.
            guard fields.count >= 6, fields[1] == "FLOCK", fields[3] == "WRITE" else { continue }
            let id = fields[5].split(separator: ":")
            guard id.count == 3, UInt64(id[0], radix: 16) == major, UInt64(id[1], radix: 16) == minor, UInt64(id[2]) == inode,
                let pid = Int32(fields[4]), pid > 0
            else { continue }
            return pid
        }
        return nil
    }
}
