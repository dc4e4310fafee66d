import ArgumentParser
import Foundation
import Logging
import Synchronization
import WarrenCore
import WarrenRuntime

/// `warren run`'s options for monitoring: Prometheus metrics to a file or over HTTP.
/// systemd notifications need no option: they are sent when $NOTIFY_SOCKET is set.
struct MonitoringOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Write Prometheus metrics to this file (atomically, 0644) after every change, for node_exporter's textfile collector.", valueName: "PATH"))
    var metricsFile: String?

    @Option(help: ArgumentHelp("Serve Prometheus metrics over HTTP at /metrics (and liveness at /healthz) on this address.", discussion: "127.0.0.1:PORT, [::1]:PORT or PORT (127.0.0.1). Metrics are unauthenticated: other addresses need --metrics-allow-remote.", valueName: "ADDRESS"))
    var metricsListen: String?

    @Flag(help: "Allow --metrics-listen on an address other than loopback.")
    var metricsAllowRemote = false

    func validate() throws {
        guard let metricsListen else {
            if metricsAllowRemote { throw ValidationError("--metrics-allow-remote needs --metrics-listen") }
            return
        }
        switch MetricsServer.Address.parse(metricsListen) {
        case .failure(let error):
            throw ValidationError("--metrics-listen \(error)")
        case .success(let address) where !address.isLoopback && !metricsAllowRemote:
            throw ValidationError("--metrics-listen \(address) is not a loopback address and metrics are served without authentication; add --metrics-allow-remote to serve them there anyway")
        case .success:
            break
        }
    }

    var address: MetricsServer.Address? {
        metricsListen.flatMap { try? MetricsServer.Address.parse($0).get() }
    }
}

/// Wires a supervisor to metrics and to systemd: the hooks it calls, the HTTP
/// server, and the watchdog pings.
final class Monitor: Sendable {
    let metrics: Metrics?
    let notifier = SystemdNotifier()
    private let lastStatusLine = Mutex("")
    private let server = Mutex<MetricsServer?>(nil)
    private let watchdog = Mutex<Task<Void, Never>?>(nil)
    private let supervisor = Mutex<Supervisor?>(nil)
    /// Liveness: when the supervisor actor last answered (monotonic seconds),
    /// and the task that asks it.
    private let lastAnswer = Mutex(Monitor.now())
    private let heartbeat = Mutex<Task<Void, Never>?>(nil)
    /// How long the supervisor may go without answering before /healthz says so.
    static let livenessLimit = 30.0
    /// How long the supervisor's loop may stand still (it turns every second)
    /// before /healthz says what it is stuck on.
    static let stallLimit = 10.0

    /// Retries binding --metrics-listen while another program holds the port.
    private let bindRetry = Mutex<Task<Void, Never>?>(nil)
    /// How long between attempts to bind a busy metrics port.
    static let bindRetryInterval: Duration = .seconds(5)

    /// Where the config is, to read certificate expiry at start and after each reload.
    private let configPath: String?
    private let stateDirOverride: String?

    init(_ options: MonitoringOptions, shard: ShardSpec? = nil, configPath: String? = nil, stateDirOverride: String? = nil) {
        metrics = options.metricsFile != nil || options.metricsListen != nil ? Metrics(filePath: options.metricsFile, shard: shard) : nil
        self.configPath = configPath
        self.stateDirOverride = stateDirOverride
    }

    /// Certificates change on disk and with the config: read them again.
    private func refreshCertificates() {
        guard let metrics, let configPath, let config = try? ConfigFile.load(path: configPath, stateDirOverride: stateDirOverride) else { return }
        Task { await metrics.observeCertificates(of: config) }
    }

    var hooks: SupervisorHooks {
        SupervisorHooks(
            statusesChanged: { [self] statuses, changed in
                metrics?.observe(statuses, changed: changed)
                guard notifier.isEnabled else { return }
                let line = SystemdNotifier.statusLine(statuses)
                let changed = lastStatusLine.withLock { last in
                    defer { last = line }
                    return last != line
                }
                if changed { notifier.notify(line) }
            },
            phaseChanged: { [self] phase in
                notifier.notify(phase)
                // systemd arms the watchdog once the service is ready.
                if case .started = phase { startWatchdog() }
                if case .reloaded = phase { refreshCertificates() }
            })
    }

    /// Starts serving metrics, if asked; the watchdog pings start once the
    /// supervisor has started its tunnels. A busy metrics port does not stop the
    /// tunnels (under systemd that would be a restart loop with no tunnel up):
    /// it is logged and the bind retried until it works.
    func start(_ options: MonitoringOptions, supervisor: Supervisor, logger: Logger) throws {
        self.supervisor.withLock { $0 = supervisor }
        try metrics?.writeFileOrThrow()
        // Before the tunnels settle: the expiry is known from the files alone.
        refreshCertificates()
        guard let address = options.address, let metrics else { return }
        startHeartbeat(supervisor)
        do {
            let started = try MetricsServer.start(address, render: { metrics.text() }, health: { [self] in health() })
            server.withLock { $0 = started }
        } catch {
            logger.error("\(error); the tunnels keep running, and warren tries again every \(Self.bindRetryInterval) until the port is free")
            retryBind(address, metrics: metrics, logger: logger)
        }
    }

    private func retryBind(_ address: MetricsServer.Address, metrics: Metrics, logger: Logger) {
        let task = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.bindRetryInterval)
                guard !Task.isCancelled,
                    let started = try? MetricsServer.start(address, render: { metrics.text() }, health: { [self] in health() })
                else { continue }
                server.withLock { $0 = started }
                logger.notice("serving metrics on \(address) now that the port is free")
                return
            }
        }
        bindRetry.withLock { $0 = task }
    }

    /// Asks the supervisor actor every 5 s; /healthz fails once it has not
    /// answered for `livenessLimit` (a wedged supervisor, not a slow bastion).
    private func startHeartbeat(_ supervisor: Supervisor) {
        heartbeat.withLock { task in
            task = Task { [self] in
                while !Task.isCancelled {
                    _ = await supervisor.stateDir
                    lastAnswer.withLock { $0 = Monitor.now() }
                    try? await Task.sleep(for: .seconds(5))
                }
            }
        }
    }

    private func health() -> MetricsServer.Health {
        if let stall = supervisor.withLock({ $0 })?.pulse.stall(limit: Self.stallLimit) { return .unhealthy(stall) }
        let silent = Monitor.now() - lastAnswer.withLock { $0 }
        guard silent > Self.livenessLimit else { return .healthy }
        return .unhealthy("the supervisor has not answered for \(Int(silent)) s")
    }

    static func now() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// WATCHDOG=1 every WATCHDOG_USEC/2, when systemd set a watchdog.
    private func startWatchdog() {
        guard let interval = notifier.watchdogInterval, let supervisor = supervisor.withLock({ $0 }) else { return }
        let notifier = self.notifier
        watchdog.withLock { task in
            guard task == nil else { return }
            task = Task {
                while !Task.isCancelled {
                    // Only a supervisor whose actor still answers is alive.
                    _ = await supervisor.stateDir
                    // ...and whose loop turns: systemd restarts a stalled one.
                    if supervisor.pulse.stall(limit: Self.stallLimit) == nil { notifier.notify("WATCHDOG=1") }
                    try? await Task.sleep(for: interval)
                }
            }
        }
    }

    /// After the supervisor stopped: no more pings or scrapes, and a final
    /// metrics file that says every tunnel is stopped.
    func finish() {
        watchdog.withLock { $0?.cancel() }
        heartbeat.withLock { $0?.cancel() }
        bindRetry.withLock { $0?.cancel() }
        server.withLock { $0 }?.stop()
        metrics?.supervisorStopped()
    }
}
