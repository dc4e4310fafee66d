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
    private var running = true
    /// When the next write is due, if one is.
    private var due: ContinuousClock.Instant?
    private var startedAt = Date().formatted(.iso8601)
    private var pid: Int32 = 0

    init(path: String, configFile: String, shard: ShardSpec? = nil, forwardBind: ForwardBind? = nil) {
        self.path = path
        self.configFile = configFile
        self.shard = shard
        self.forwardBind = forwardBind
    }

    func start(pid: Int32) {
        self.pid = pid
        startedAt = Date().formatted(.iso8601)
    }

    /// - Parameter soon: a state changed (written within 50 ms); false for
    ///   connection counts alone (within a second).
    func update(_ statuses: [String: TunnelStatus], running: Bool, soon: Bool = true) {
        self.statuses = statuses
        self.running = running
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
        let report = StatusReport(
            supervisorPid: pid, configFile: configFile, startedAt: startedAt,
            updatedAt: Date().formatted(.iso8601), running: running, shard: shard, forwardBind: forwardBind?.address,
            tunnels: statuses.values.sorted { $0.name < $1.name })
        do {
            // A view of the present: no fsync (it is written again after a crash).
            try AtomicFile.write(StatusCoding.encode(report), to: path, mode: 0o644, durable: false)
        } catch {
            FileHandle.standardError.write(Data("warren: cannot write \(path): \(error)\n".utf8))
        }
    }
}

/// The JSON form of status.json (also what `warren status --json` prints).
public enum StatusCoding {
    public static func encode(_ report: StatusReport) -> String {
        JSONOutput.encode(report)
    }

    public static func decode(_ data: Data) throws -> StatusReport {
        try JSONDecoder().decode(StatusReport.self, from: data)
    }
}
