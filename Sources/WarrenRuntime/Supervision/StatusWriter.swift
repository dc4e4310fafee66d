import Foundation
import WarrenCore

/// Keeps `<state_dir>/status.json` current. Changes are coalesced: a burst of
/// updates (fifty tunnels coming up) becomes a few atomic writes.
actor StatusWriter {
    let path: String
    let configFile: String
    /// This supervisor's shard, reported in every status.
    let shard: ShardSpec?
    /// `--forward-bind`, reported so that `warren check` probes where forwards listen.
    let forwardBind: ForwardBind?
    private var report: StatusReport?
    private var scheduled = false
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

    func update(_ statuses: [String: TunnelStatus], running: Bool) {
        report = StatusReport(
            supervisorPid: pid, configFile: configFile, startedAt: startedAt,
            updatedAt: Date().formatted(.iso8601), running: running, shard: shard, forwardBind: forwardBind?.address,
            tunnels: statuses.values.sorted { $0.name < $1.name })
        guard !scheduled else { return }
        scheduled = true
        Task {
            try? await Task.sleep(for: .milliseconds(50))
            self.flush()
        }
    }

    func flush() {
        scheduled = false
        guard let report else { return }
        do {
            try AtomicFile.write(StatusCoding.encode(report), to: path, mode: 0o644)
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
