import Foundation
import Synchronization
import WarrenCore

/// The supervisor's metrics: fed by `SupervisorHooks.statusesChanged`, read by
/// the `/metrics` server and written to a textfile-collector file.
public final class Metrics: Sendable {
    private let tracker: Mutex<TunnelMetrics>
    /// `--metrics-file`: rewritten atomically (0644) after changes, a burst of
    /// changes coalesced into one write.
    public let filePath: String?
    private let writePending = Mutex(false)

    public init(filePath: String?, shard: ShardSpec? = nil) {
        self.tracker = Mutex(TunnelMetrics(startedAt: Date().timeIntervalSince1970, shard: shard))
        self.filePath = filePath
    }

    /// Takes in a change: one tunnel's new status (`changed`), or the whole
    /// table when it was set anew. At a thousand tunnels, going over all of
    /// them for each connection a probe opened was the wrong cost.
    public func observe(_ statuses: [String: TunnelStatus], changed: TunnelStatus? = nil) {
        let wall = Date().timeIntervalSince1970
        let monotonic = Self.monotonicSeconds()
        tracker.withLock { tracker in
            if let changed {
                tracker.observe(changed, wallClock: wall, monotonic: monotonic)
            } else {
                tracker.observe(statuses, wallClock: wall, monotonic: monotonic)
            }
        }
        scheduleWrite()
    }

    /// Reads the certificates of `config`'s tunnels for
    /// `warren_tunnel_certificate_expiry_timestamp_seconds`.
    public func observeCertificates(of config: WarrenConfig) async {
        var expiry: [String: Double] = [:]
        // Each file read once: `[defaults]` often gives every tunnel the same certificate.
        var byPath: [String: Double?] = [:]
        for tunnel in config.tunnels where tunnel.enabled {
            guard let path = tunnel.endpoint.login.certificateFile else { continue }
            if byPath[path] == nil {
                let reading = await CertificateReader.read(path, sshBinary: config.sshBinary)
                byPath[path] = .some((try? reading.get())?.expiry?.timeIntervalSince1970)
            }
            if let seconds = byPath[path] ?? nil { expiry[tunnel.name] = seconds }
        }
        tracker.withLock { $0.certificateExpiry = expiry }
        scheduleWrite()
    }

    /// The supervisor stopped every tunnel and is exiting: say so, and write
    /// the file one last time.
    public func supervisorStopped() {
        let wall = Date().timeIntervalSince1970
        tracker.withLock { $0.stopAll(wallClock: wall) }
        writeFile()
    }

    /// The metrics in the Prometheus text format.
    public func text() -> String {
        tracker.withLock { $0.render() }
    }

    /// Writes the file now; a failure is reported on stderr.
    public func writeFile() {
        do {
            try writeFileOrThrow()
        } catch {
            FileHandle.standardError.write(Data("warren: \(error)\n".utf8))
        }
    }

    /// Writes the file now (at start, to fail early on a bad path, and at the final stop).
    public func writeFileOrThrow() throws {
        guard let filePath else { return }
        writePending.withLock { $0 = false }
        do {
            // The temporary name starts with a dot and does not end in .prom,
            // so node_exporter's textfile collector never reads half a file.
            try AtomicFile.write(text(), to: filePath, mode: 0o644)
        } catch {
            throw MetricsServerError("cannot write metrics to \(filePath): \(error)")
        }
    }

    private func scheduleWrite() {
        guard filePath != nil else { return }
        let first = writePending.withLock { pending in
            defer { pending = true }
            return !pending
        }
        guard first else { return }
        Task.detached { [self] in
            try? await Task.sleep(for: .milliseconds(100))
            writeFile()
        }
    }

    static func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
