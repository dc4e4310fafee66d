import Foundation
import Logging
import WarrenCore

/// `share_connection = true`: tunnels that reach one bastion the same way
/// ride one ssh master (`ControlMaster yes`, never `ControlPersist`, whose
/// fork would hide the process warren watches). The master is a runner of its
/// own with no forwards; each member's runs add its forwards over the
/// master's control socket and remove them there (`MuxClient`: what
/// `ssh -O forward` and `-O cancel` send, without a process each).
extension Supervisor {
    /// A shared connection's master and the tunnels riding it.
    struct Master {
        var runner: TunnelRunner
        var hub: SharedMaster
        var members: Set<String>
    }

    func startMember(_ tunnel: TunnelConfig, in group: inout DiscardingTaskGroup) {
        let share = ConnectionShare(tunnel)
        let hub = masters[share]?.hub ?? startMaster(share, in: &group)
        masters[share]?.members.insert(tunnel.name)
        let runner = TunnelRunner(
            tunnel: tunnel,
            environment: RunnerEnvironment(
                runs: .shared(hub), tunnelDirectory: files.directory(for: tunnel), throttle: memberThrottle,
                // The member's local forwards are warren's listeners, handed to the shared master.
                listeners: HeldListeners.held(tunnel).isEmpty ? nil : HeldListeners(controlPath: hub.controlPath), logger: logger,
                prepare: { [files, sshBinary = config.sshBinary, path = hub.controlPath] in
                    _ = try await files.write(tunnel, sshBinary: sshBinary, control: .member(path: path))
                },
                publish: { [sink] runner, status in sink.yield(.status(runner, status)) }))
        runners[tunnel.name] = runner
        group.addTask { await runner.run() }
    }

    private func startMaster(_ share: ConnectionShare, in group: inout DiscardingTaskGroup) -> SharedMaster {
        let tunnel = share.master
        let controlPath = files.controlPath(for: share)
        let hub = SharedMaster(share: share, controlPath: controlPath)
        // The master logs in for every member (with their login method's agent or askpass).
        let runner = sshRunner(
            for: tunnel,
            prepare: { [files, renewer, sshBinary = config.sshBinary] in
                do {
                    // The master logs in for its members: a certificate it offers must be valid.
                    try await renewer.ready(tunnel)
                } catch let error as CertificateRenewer.Unusable {
                    throw HostKeyResolutionError(kind: error.kind, message: error.description)
                }
                guard controlPath.utf8.count < 108 else {
                    throw CommandError("the control socket path \(controlPath) is longer than a unix socket allows (107 bytes): use a shorter state_dir")
                }
                _ = try await files.write(tunnel, sshBinary: sshBinary, control: .master(path: controlPath))
                // A socket left by an earlier master is never trusted: ssh would refuse to listen, or a stranger could answer.
                unlink(controlPath)
            },
            publish: { _, status in hub.update(status) })
        masters[share] = Master(runner: runner, hub: hub, members: [])
        logger.info("shared connection \(tunnel.name) to \(share.endpoint.host):\(share.endpoint.port)", metadata: ["tunnel": "\(tunnel.name)"])
        group.addTask { await runner.run() }
        return hub
    }

    /// A member left its shared connection (removed or changed on reload).
    func leave(_ tunnel: TunnelConfig) {
        masters[ConnectionShare(tunnel)]?.members.remove(tunnel.name)
    }

    /// Stops the masters no tunnel rides any more, keeping those that tunnels
    /// about to start will ride (a member whose forwards changed rejoins its
    /// master: the connections through the others stay open).
    func stopMastersWithoutMembers(keeping wanted: Set<ConnectionShare>) async {
        for (share, master) in masters where master.members.isEmpty && !wanted.contains(share) {
            masters[share] = nil
            await master.runner.stop()
        }
    }
}
