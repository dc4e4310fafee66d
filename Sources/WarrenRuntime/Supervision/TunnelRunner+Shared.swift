import Foundation
import Synchronization
import WarrenCore

extension TunnelRunner {
    /// One run of a member: wait for the master, add the forwards to it, and
    /// last until the master goes down (or a stop, which cancels the forwards:
    /// `-O cancel` closes only the listeners, so open connections stay).
    /// Always ends with exactly one `.exited` for `run`, as a process run does.
    func runOnMaster(_ run: Int, control: ChildControl, master: SharedMaster) async {
        guard let pid = await waitForMaster(master, control: control) else {
            input.yield(.exited(run: run, .diagnosed(Self.masterDown(master.snapshot, waiting: true))))
            return
        }
        // The member's files (what `ssh -F` by hand would use) once its master
        // is up: a thousand renders do not compete with the masters' handshakes.
        do {
            try await env.prepare()
        } catch {
            input.yield(.exited(run: run, .diagnosed(ExitDiagnosis(kind: (error as? HostKeyResolutionError)?.kind ?? .unknown, message: "\(error)"))))
            return
        }
        input.yield(.spawned(run: run, pid: pid))
        if let failure = holdListeners() {
            input.yield(.exited(run: run, .diagnosed(failure)))
            return
        }
        let added = await mux(on: master, cancel: false, timeout: Self.openTimeout, abortOnStop: control)
        if !added.ok, control.isStopRequested {
            // Stopped mid-request: take back whatever the master added, within the stop's time.
            _ = await mux(on: master, cancel: true, timeout: Self.cancelTimeout)
            input.yield(.exited(run: run, .diagnosed(ExitDiagnosis(kind: .connectionLost, message: "stopped while adding the forwards to the shared connection"))))
            return
        }
        guard added.ok else {
            input.yield(.exited(run: run, .diagnosed(forwardFailure(added.lines))))
            return
        }
        input.yield(.forwardsAdded(run: run))
        let seen = master.snapshot
        await firstOf({ await master.changed(since: seen) }, { await control.stopRequested() })
        let now = master.snapshot
        if control.isStopRequested, now.pid == pid {
            _ = await mux(on: master, cancel: true, timeout: Self.cancelTimeout)
            input.yield(.exited(run: run, .diagnosed(ExitDiagnosis(kind: .connectionLost, message: "the forwards were removed from the shared connection"))))
        } else {
            input.yield(.exited(run: run, .diagnosed(Self.masterDown(now, waiting: false))))
        }
    }

    /// The master's pid once it is up; nil when a stop came first.
    private func waitForMaster(_ master: SharedMaster, control: ChildControl) async -> Int32? {
        while true {
            let seen = master.snapshot
            if control.isStopRequested { return nil }
            if let pid = seen.pid { return pid }
            await firstOf({ await master.changed(since: seen) }, { await control.stopRequested() })
        }
    }

    static func masterDown(_ snapshot: SharedMaster.Snapshot, waiting: Bool) -> ExitDiagnosis {
        let what = waiting ? "the shared connection is not up" : "the shared connection ended"
        guard let error = snapshot.lastError else { return ExitDiagnosis(kind: .connectionLost, message: what) }
        return ExitDiagnosis(kind: error.kind, message: "\(what): \(error.message)")
    }

    /// Why `-O forward` failed: a local port another program holds, a remote
    /// port the server refused, or ssh's own words.
    private func forwardFailure(_ lines: [String]) -> ExitDiagnosis {
        let said = lines.last ?? "ssh -O forward failed"
        if !LocalPorts.canBind((env.listeners == nil ? tunnel.localForwards : []) + tunnel.dynamicForwards) {
            return ExitDiagnosis(kind: .localPortInUse, message: "a local port of the forwards is in use (\(said))")
        }
        if !tunnel.remoteForwards.isEmpty {
            return ExitDiagnosis(kind: .remoteForwardFailed, message: said)
        }
        return ExitDiagnosis(kind: .unknown, message: said)
    }

    /// The whole exchange that adds the forwards (a remote forward waits for the bastion).
    static let openTimeout = 15.0
    /// The exchange that removes them at a stop: well inside the stop's grace
    /// period, so that no control socket holds a stop (SIGTERM) up.
    static let cancelTimeout = min(2.0, TunnelMachine.teardown.grace * 2 / 3)

    /// Adds (or removes) the tunnel's forwards over the master's control socket
    /// (what `ssh -O forward` and `-O cancel` would send), within `timeout`
    /// for the whole exchange; a stop on `abortOnStop` ends it at once. Local
    /// forwards whose listeners warren holds are not the master's: only the
    /// others are added.
    private func mux(on master: SharedMaster, cancel: Bool, timeout: Double, abortOnStop control: ChildControl? = nil) async -> (ok: Bool, lines: [String]) {
        let forwards = env.listeners == nil ? tunnel.forwards : HeldListeners.leftToSSH(tunnel)
        guard !forwards.isEmpty else { return (true, []) }
        let abort = MuxAbort()
        let watcher = control.map { control in
            Task {
                await control.stopRequested()
                if !Task.isCancelled { abort.abort() }
            }
        }
        defer { watcher?.cancel() }
        let failures = await NetworkCheck.offPool { [path = master.controlPath] in
            MuxClient.request(forwards, at: path, cancel: cancel, timeout: timeout, abort: abort)
        }
        return (failures.isEmpty, failures)
    }
}

/// Waits for whichever of two waits returns first; the other is cancelled.
func firstOf(_ a: @escaping @Sendable () async -> Void, _ b: @escaping @Sendable () async -> Void) async {
    await withTaskGroup(of: Void.self) { group in
        group.addTask { await a() }
        group.addTask { await b() }
        await group.next()
        group.cancelAll()
    }
}
