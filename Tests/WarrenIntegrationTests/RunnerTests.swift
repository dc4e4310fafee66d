import Foundation
import Logging
import Synchronization
import Testing
import WarrenCore
import WarrenRuntime
import WarrenTestSupport

/// A stand-in for ssh that replays a recorded transcript of real OpenSSH 9.2
/// output: its log lines to the `-E` pipe, anything else to stderr; then it
/// exits or waits to be stopped. Runtime tests drive the real runner with it,
/// without sshd timing.
struct StandIn {
    static let script = """
        log=/dev/stderr
        while [ $# -gt 0 ]; do case "$1" in -E) log="$2"; shift 2;; *) shift;; esac; done
        [ -n "$STANDIN_MARK" ] && echo $$ >> "$STANDIN_MARK"
        [ -n "$STANDIN_STDERR" ] && cat "$STANDIN_STDERR" >&2
        [ -n "$STANDIN_LOG" ] && cat "$STANDIN_LOG" >> "$log"
        case "$STANDIN_THEN" in
            exit*) exit "${STANDIN_THEN#exit }" ;;
            *) exec sleep 1000 ;;
        esac
        """

    /// Recorded transcripts of the real client (Tests/WarrenCoreTests/Fixtures/stderr).
    static func transcript(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("WarrenCoreTests/Fixtures/stderr/\(name).txt").path
    }

    let directory: TemporaryDirectory
    let mark: String

    init() throws {
        directory = try TemporaryDirectory(prefix: "wrun-")
        mark = directory.appending("spawned")
    }

    /// How many stand-ins were started so far.
    var spawned: [Int32] {
        ((try? String(contentsOfFile: mark, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { Int32($0) }
    }

    func launch(_ name: String, log: String? = nil, stderr: String? = nil, then: String = "wait") throws -> SSHLaunch {
        let script = try directory.write(Self.script, to: "ssh-standin", mode: 0o700)
        let logPath = directory.appending("\(name).log")
        var environment = SSHLaunch.isolated
        environment["STANDIN_MARK"] = mark
        environment["STANDIN_LOG"] = log
        environment["STANDIN_STDERR"] = stderr
        environment["STANDIN_THEN"] = then
        var launch = SSHLaunch(executable: "/bin/sh", arguments: [script, "-v", "-E", logPath, "-F", "none", "-N", "warren-\(name)"], environment: environment)
        launch.logPath = logPath
        return launch
    }
}

/// Every status a runner published, in order.
final class Statuses: Sendable {
    private let list = Mutex<[TunnelStatus]>([])
    var all: [TunnelStatus] { list.withLock { $0 } }
    var last: TunnelStatus? { all.last }
    func add(_ status: TunnelStatus) { list.withLock { $0.append(status) } }

    /// Polls without blocking a thread: the runner under test needs the
    /// cooperative pool, which other suites' blocking waits already strain.
    func wait(timeout: Duration = .seconds(60), for condition: (TunnelStatus) -> Bool) async -> TunnelStatus? {
        await eventually(timeout: timeout) { all.contains(where: condition) }
        return all.first(where: condition)
    }
}

/// Polls `condition` every 5 ms without blocking a thread; true if it came.
@discardableResult
func eventually(timeout: Duration = .seconds(60), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

@Suite(.serialized) struct RunnerTests {
    static func tunnel(_ name: String, bastion: String = "127.0.0.1") -> TunnelConfig {
        TunnelConfig(name: name, endpoint: SSHEndpoint(host: bastion, identityFile: "/dev/null"), probeInterval: 0)
    }

    func runner(
        _ name: String, _ launch: SSHLaunch, throttle: StartThrottle = StartThrottle(limit: 8), statuses: Statuses,
        bastion: String = "127.0.0.1", prepare: @escaping @Sendable () async throws -> Void = {}
    ) -> TunnelRunner {
        TunnelRunner(tunnel: Self.tunnel(name, bastion: bastion), environment: RunnerEnvironment(
            runs: .process(launch), tunnelDirectory: "/nonexistent-\(name)", throttle: throttle, logger: Logger(label: "test"),
            prepare: prepare, publish: { _, status in statuses.add(status) }))
    }

    @Test func aRecordedSuccessfulRunIsUpAndStopEndsIt() async throws {
        let standIn = try StandIn()
        defer { standIn.directory.remove() }
        let statuses = Statuses()
        let runner = runner("ok", try standIn.launch("ok", log: StandIn.transcript("success")), statuses: statuses)
        let loop = Task { await runner.run() }
        let up = await statuses.wait { $0.state == .up }
        #expect(up?.pid == standIn.spawned.first)
        let final = await runner.stop()
        await loop.value
        #expect(final.state == .stopped && final.pid == nil)
        #expect(standIn.spawned.allSatisfy { !isLiveProcess($0) })
    }

    @Test func aBastionThatDropsAtOnceIsReconnectedFreelyFiveTimesThenBackedOff() async throws {
        let standIn = try StandIn()
        defer { standIn.directory.remove() }
        let statuses = Statuses()
        // Up (the recorded success), then the recorded end of a dropped connection, at once.
        let flap = try standIn.directory.write(
            try String(contentsOfFile: StandIn.transcript("success"), encoding: .utf8)
                + String(contentsOfFile: StandIn.transcript("connection_lost"), encoding: .utf8), to: "flap.txt")
        let runner = runner("flap", try standIn.launch("flap", log: flap, then: "exit 255"), statuses: statuses)
        let loop = Task { await runner.run() }
        let backoff = await statuses.wait { $0.state == .backoff }
        await runner.stop()
        await loop.value
        let first = try #require(backoff, "a tight loop is stopped by the budget")
        // Five quick drops reconnect at once; a machine so loaded that a run stays
        // up a second starts the count over, which only delays the first backoff.
        #expect(first.restarts >= BackoffPolicy(initial: 1, maximum: 1).freeQuickDrops, "the first five reconnect at once")
        #expect(first.lastError?.kind == .connectionLost)
        let ups = statuses.all.filter { $0.state == .up }.count
        #expect(ups >= 6, "each run came up before it was dropped: \(ups)")
    }

    @Test func stopWhileTheFilesArePreparedStartsNoSsh() async throws {
        let standIn = try StandIn()
        defer { standIn.directory.remove() }
        let statuses = Statuses()
        let preparing = Mutex(false), release = Mutex(false)
        let runner = runner("slow", try standIn.launch("slow", log: StandIn.transcript("success")), statuses: statuses, prepare: {
            preparing.withLock { $0 = true }
            while !release.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
        })
        let loop = Task { await runner.run() }
        #expect(await eventually { preparing.withLock { $0 } })
        let stopped = Task { await runner.stop() }
        try await Task.sleep(for: .milliseconds(100))
        release.withLock { $0 = true }  // prepare() ends after stop() was asked
        let final = await stopped.value
        await loop.value
        #expect(final.state == .stopped)
        #expect(standIn.spawned.isEmpty, "no ssh started after stop(): \(standIn.spawned)")
    }

    @Test func theStartThrottleBoundsAttemptsInFlightAndStopReleasesWaiters() async throws {
        let standIn = try StandIn()
        defer { standIn.directory.remove() }
        let throttle = StartThrottle(limit: 2)
        let statuses = Statuses()
        // Five tunnels whose ssh never becomes ready: only two may be connecting.
        let runners = try (0..<5).map { runner("t\($0)", try standIn.launch("t\($0)"), throttle: throttle, statuses: statuses) }
        let loops = runners.map { runner in Task { await runner.run() } }
        #expect(await eventually { standIn.spawned.count == 2 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(standIn.spawned.count == 2, "no third attempt while two are in flight")
        #expect(await throttle.busy == 2)
        for runner in runners { await runner.stop() }
        for loop in loops { await loop.value }
        #expect(await throttle.busy == 0, "every slot given back, waiters included")
        #expect(standIn.spawned.allSatisfy { !isLiveProcess($0) })
    }

    @Test func serverTextOnStderrNeverDrivesStateAndALongLineLosesNothing() async throws {
        let standIn = try StandIn()
        defer { standIn.directory.remove() }
        let statuses = Statuses()
        let banner = try standIn.directory.write(
            "debug1: Entering interactive session.\nPermission denied (publickey).\n" + String(repeating: "y", count: 150_000) + "\n",
            to: "banner.txt")
        let runner = runner("banner", try standIn.launch("banner", stderr: banner), statuses: statuses)
        let loop = Task { await runner.run() }
        #expect(await statuses.wait { $0.state == .connecting } != nil)
        try await Task.sleep(for: .milliseconds(500))
        #expect(statuses.all.allSatisfy { $0.state != .up }, "a banner line is not readiness")
        #expect(statuses.last?.lastError == nil)
        let pid = try #require(standIn.spawned.first)
        let final = await runner.stop()
        await loop.value
        #expect(final.state == .stopped)
        #expect(!isLiveProcess(pid), "the child is still under control after a 150 kB line")
    }

    @Test func theStartBudgetIsPerBastionSoOneFullBastionHoldsBackNoOther() async throws {
        let standIn = try StandIn()
        defer { standIn.directory.remove() }
        let throttle = StartThrottle(limit: 16, perBastion: 2)
        let statuses = Statuses()
        // Three tunnels to each of two bastions, none ever ready: two in flight to each.
        let runners = try (0..<6).map { i in
            runner("b\(i)", try standIn.launch("b\(i)"), throttle: throttle, statuses: statuses, bastion: i < 3 ? "127.0.0.2" : "127.0.0.3")
        }
        let loops = runners.map { runner in Task { await runner.run() } }
        #expect(await eventually { standIn.spawned.count == 4 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(standIn.spawned.count == 4, "two per bastion, not four to one and none to the other")
        let (first, second) = (await throttle.count(bastion: "127.0.0.2:22"), await throttle.count(bastion: "127.0.0.3:22"))
        #expect(first == 2 && second == 2)
        for runner in runners { await runner.stop() }
        for loop in loops { await loop.value }
        #expect(await throttle.busy == 0)
    }
}
