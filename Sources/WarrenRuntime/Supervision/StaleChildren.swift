import Foundation

/// Finds and stops ssh children left by an earlier supervisor of the same state
/// directory (one killed so suddenly that PDEATHSIG could not be armed, or an
/// ssh started by hand from warren's files), before their ports are bound again.
public enum StaleChildren {
    /// The pid file of a tunnel's running ssh.
    public static func pidFile(tunnelDirectory: String) -> String { "\(tunnelDirectory)/ssh.pid" }

    /// Pids of live (not zombie) processes whose command line runs ssh with a
    /// config under `<stateDir>/tunnels/`: from the pid files first, then a scan of /proc.
    public static func find(stateDir: String) -> [Int32] {
        let marker = "\(stateDir)/tunnels/"
        var pids: Set<Int32> = []
        let tunnels = (try? FileManager.default.contentsOfDirectory(atPath: marker)) ?? []
        for name in tunnels {
            let file = pidFile(tunnelDirectory: marker + name)
            if let text = try? String(contentsOfFile: file, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                isStaleSSH(pid: pid, marker: marker)
            {
                pids.insert(pid)
            }
        }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != getpid(), isStaleSSH(pid: pid, marker: marker) else { continue }
            pids.insert(pid)
        }
        return pids.sorted()
    }

    /// Stops them: SIGTERM, a grace period, then SIGKILL. Returns the pids stopped.
    @discardableResult
    public static func stop(stateDir: String, grace: Double = 2) async -> [Int32] {
        let pids = find(stateDir: stateDir)
        guard !pids.isEmpty else { return [] }
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        while Date() < deadline, pids.contains(where: { ProcessInfoReader.isAlive($0) }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for pid in pids where ProcessInfoReader.isAlive(pid) { kill(pid, SIGKILL) }
        return pids
    }

    private static func isStaleSSH(pid: Int32, marker: String) -> Bool {
        // The command line first: it rules out nearly every process on the
        // machine. Reading /proc/PID/status (isAlive) for each of them was most
        // of warren's start-up time before its first ssh (`make bench`).
        guard let arguments = ProcessInfoReader.commandLine(pid), arguments.count >= 3 else { return false }
        guard let f = arguments.firstIndex(of: "-F"), f + 1 < arguments.count else { return false }
        let executable = (arguments[0] as NSString).lastPathComponent
        guard executable == "ssh" || arguments.contains(where: { $0.hasSuffix("/ssh") }), arguments.contains("-N"),
            let config = absoluteConfigPath(arguments[f + 1], pid: pid)
        else { return false }
        return config.hasPrefix(marker) && config.hasSuffix("/ssh_config") && ProcessInfoReader.isAlive(pid)
    }

    /// `-F PATH` made absolute: an ssh started by hand from the state directory
    /// (`ssh -F tunnels/db/ssh_config -N warren-db`) names it relative to its own
    /// working directory, which /proc/PID/cwd shows.
    static func absoluteConfigPath(_ path: String, pid: Int32) -> String? {
        if path.hasPrefix("/") { return URL(fileURLWithPath: path).standardized.path }
        guard let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd") else { return nil }
        return URL(fileURLWithPath: cwd + "/" + path).standardized.path
    }
}

/// Reads /proc.
public enum ProcessInfoReader {
    /// The argv of a process, or nil.
    public static func commandLine(_ pid: Int32) -> [String]? {
        guard let data = read("/proc/\(pid)/cmdline"), !data.isEmpty else { return nil }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A /proc file read to its end: they report size 0, and Foundation's
    /// whole-file readers stop after one page on them.
    static func read(_ path: String) -> Data? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return try? handle.readToEnd()
    }

    /// Whether the process exists and is not a zombie (PID 1 here does not reap
    /// orphans, so a dead orphan stays `State: Z` and kill -0 still succeeds).
    public static func isAlive(_ pid: Int32) -> Bool {
        guard let data = read("/proc/\(pid)/status") else { return false }
        let status = String(decoding: data, as: UTF8.self)
        for line in status.split(separator: "\n") where line.hasPrefix("State:") {
            return !line.contains("Z") && !line.contains("X (dead)")
        }
        return false
    }
}
