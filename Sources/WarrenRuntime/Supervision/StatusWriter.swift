import Foundation
import WarrenCore

/// Keeps `<state_dir>/status.json` current. Changes are coalesced: a burst of
/// updates (fifty tunnels coming up) becomes a few atomic writes. A change of
/// state is written within 50 ms; a change of connection counts alone within
/// a second (a thousand tunnels' probes are connections too, and rewriting the
/// whole file for each cost 40 % of a core).
actor StatusWriter {
    let path: String
    let configFile: String
    /// This supervisor's shard, reported in every status.
    let shard: ShardSpec?
    /// `--forward-bind`, reported so that `warren check` probes where forwards listen.
    let forwardBind: ForwardBind?
    private var statuses: [String: TunnelStatus]?
    /// Each tunnel's part of the file, kept until its status changes: at a
    /// thousand tunnels, encoding every status for each write was a quarter
    /// of an idle supervisor's CPU.
    private var fragments: [String: String] = [:]
    private var running = true
    /// When the next write is due, if one is.
    private var due: ContinuousClock.Instant?
    private var startedAt = Date().formatted(.iso8601)
    private var pid: Int32 = 0

    init(path: String, configFile: String, shard: ShardSpec? = nil, forwardBind: ForwardBind? = nil) {
        self.path = path
        // Absolute, so that `warren status` and `check` run elsewhere find it.
        self.configFile = Locations.absolute(configFile)
        self.shard = shard
        self.forwardBind = forwardBind
    }

    func start(pid: Int32) {
        self.pid = pid
        startedAt = Date().formatted(.iso8601)
    }

    /// Every tunnel's status (at start, after a reload, at the end).
    func replace(_ statuses: [String: TunnelStatus], running: Bool) {
        self.statuses = statuses
        fragments = [:]
        self.running = running
        schedule(soon: true)
    }

    /// One tunnel's new status. Only that entry changes: at a thousand
    /// tunnels, handing over the whole table for each change copied it each
    /// time (the supervisor's copy and this one shared storage).
    /// - Parameter soon: a state changed (written within 50 ms); false for
    ///   connection counts alone (within a second).
    func update(_ status: TunnelStatus, soon: Bool) {
        statuses?[status.name] = status
        fragments[status.name] = nil
        schedule(soon: soon)
    }

    private func schedule(soon: Bool) {
        let when = ContinuousClock.now + (soon ? .milliseconds(50) : .seconds(1))
        if let due, due <= when { return }
        due = when
        Task {
            try? await Task.sleep(until: when)
            if self.due == when { self.flush() }
        }
    }

    func flush() {
        due = nil
        guard let statuses else { return }
        let header = StatusReport(
            supervisorPid: pid, configFile: configFile, startedAt: startedAt,
            updatedAt: Date().formatted(.iso8601), running: running, shard: shard, forwardBind: forwardBind?.address,
            tunnels: [])
        var parts: [String] = []
        parts.reserveCapacity(statuses.count)
        for name in statuses.keys.sorted() {
            if let fragment = fragments[name] {
                parts.append(fragment)
            } else if let status = statuses[name] {
                let fragment = StatusCoding.fragment(status)
                fragments[name] = fragment
                parts.append(fragment)
            }
        }
        do {
            // A view of the present: no fsync (it is written again after a crash).
            try AtomicFile.write(StatusCoding.assemble(header, tunnels: parts), to: path, mode: 0o644, durable: false)
        } catch {
            FileHandle.standardError.write(Data("warren: cannot write \(path): \(error)\n".utf8))
        }
    }
}

/// The JSON form of status.json (also what `warren status --json` prints).
public enum StatusCoding {
    public static func encode(_ report: StatusReport) -> String {
        var header = report
        header.tunnels = []
        return assemble(header, tunnels: report.tunnels.map(fragment))
    }

    /// One tunnel's entry in the `tunnels` array, as `JSONOutput` prints it there.
    static func fragment(_ status: TunnelStatus) -> String {
        var text = JSONOutput.encode(status)
        text.removeLast()  // the final newline
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
    }

    /// The file: `header` (whose `tunnels` is empty) with the entries put in
    /// its `tunnels` array. The same text as `JSONOutput.encode` of the whole
    /// report (a test holds them equal).
    static func assemble(_ header: StatusReport, tunnels: [String]) -> String {
        let text = JSONOutput.encode(header)
        guard !tunnels.isEmpty, let empty = text.range(of: emptyTunnels) else { return text }
        return text.replacingCharacters(in: empty, with: "\"tunnels\" : [\n" + tunnels.joined(separator: ",\n") + "\n  ]")
    }

    private static let emptyTunnels = "\"tunnels\" : [\n\n  ]"

    public static func decode(_ data: Data) throws -> StatusReport {
        try JSONDecoder().decode(StatusReport.self, from: data)
    }
}
