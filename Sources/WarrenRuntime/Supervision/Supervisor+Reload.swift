import Foundation
import Logging
import WarrenCore

extension Supervisor {
    /// SIGHUP: re-read the config. Invalid: keep everything running and say why.
    /// Valid: stop removed tunnels, start added ones, restart only changed ones.
    /// A changed tunnel whose ports warren holds hands over to its new ssh at
    /// once (`retire()`); any other runner is stopped in the background, never awaited here: one tunnel
    /// slow to stop (a control socket that dribbles its answer) must not hold
    /// the loop that serves all the others. Its replacement starts once it is
    /// gone (`retired`): same ports.
    func reload(in group: inout DiscardingTaskGroup) async {
        logger.info("reloading \(options.configPath)")
        let new: WarrenConfig
        do {
            new = try Self.loadConfig(options)
        } catch {
            logger.error("the new config is invalid; keeping the running one", metadata: ["errors": "\(error.description)"])
            return
        }
        guard new.stateDir == config.stateDir else {
            logger.error("state_dir changed from \(config.stateDir) to \(new.stateDir); that needs a restart. Keeping the running config")
            return
        }
        let old = Dictionary(uniqueKeysWithValues: selected(config).map { ($0.name, $0) })
        let wanted = Dictionary(uniqueKeysWithValues: selected(new).map { ($0.name, $0) })
        config = new
        await renewer.configure(selected(new))
        var stopped = 0, started = 0, restarted = 0
        for (name, tunnel) in old where wanted[name] != tunnel {
            if let runner = runners.removeValue(forKey: name) {
                if let next = wanted[name], Self.canRetire(runner, into: next) {
                    // warren holds its ports: the old ssh carries its open
                    // connections to their end while the new one takes new ones.
                    runner.retire()
                } else {
                    retire(runner, in: &group)
                }
            }
            if tunnel.shareConnection { leave(tunnel) }
            if wanted[name] == nil {
                stopped += 1
                waitingStart[name] = nil
                statuses[name] = new.tunnel(named: name).map(stoppedStatus)
            }
        }
        // A master is an ssh of its own: stopping it takes at most the teardown's grace.
        await stopMastersWithoutMembers(keeping: Set(wanted.values.filter(\.shareConnection).map(ConnectionShare.init)))
        for (name, tunnel) in wanted.sorted(by: { $0.key < $1.key }) where old[name] != tunnel {
            if old[name] == nil { started += 1 } else { restarted += 1 }
            if retiring[name] != nil {
                waitingStart[name] = tunnel
            } else {
                start(tunnel, in: &group)
            }
        }
        for tunnel in new.tunnels where wanted[tunnel.name] == nil {
            statuses[tunnel.name] = stoppedStatus(tunnel)
        }
        for name in statuses.keys where new.tunnel(named: name) == nil { statuses[name] = nil }
        await releaseListeners()
        await writeStatus()
        logger.info("reloaded: \(started) started, \(restarted) restarted, \(stopped) stopped, \(wanted.count - started - restarted) unchanged")
    }

    /// Stops `runner` in a task of its own; the loop hears `.retired` when it is gone.
    func retire(_ runner: TunnelRunner, in group: inout DiscardingTaskGroup) {
        retiring[runner.tunnel.name] = runner
        group.addTask { [sink] in
            await runner.stop()
            sink.yield(.retired(runner))
        }
    }

    /// A retired runner is gone: the tunnel that waited for its ports starts.
    func retired(_ runner: TunnelRunner, in group: inout DiscardingTaskGroup) {
        let name = runner.tunnel.name
        guard retiring[name] === runner else { return }
        retiring[name] = nil
        if let tunnel = waitingStart.removeValue(forKey: name) { start(tunnel, in: &group) }
    }
}
