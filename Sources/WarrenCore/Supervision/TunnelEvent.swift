/// What happened to a tunnel, as the runtime reports it to its `TunnelMachine`.
///
/// Events about one ssh run carry that run's number (see `TunnelMachine.run`),
/// so an event from a run that is already over is recognised and ignored.
public enum TunnelEvent: Sendable, Equatable {
    /// A start slot was granted (starts are throttled per bastion and overall).
    case slotGranted
    /// ssh of run `run` was spawned with this pid.
    case spawned(run: Int, pid: Int32)
    /// A line of ssh's own log (read by the machine's `SSHTranscript`). Text
    /// the server sent (its banner) never becomes an event.
    case log(run: Int, String)
    /// Run `run` ended: ssh exited, or it never started (its files could not
    /// be prepared, exec failed, or it was stopped first).
    case exited(run: Int, ChildExit)
    /// The forwards of run `run` were added to a shared connection's master
    /// (`ssh -O forward` succeeded): every one of them is bound.
    case forwardsAdded(run: Int)
    /// An armed timer fired.
    case timer(TunnelTimer)
    /// A probe through the local forwards of run `run` finished.
    case probed(run: Int, ProbeOutcome)
    /// What warren watches for itself was looked at (no ssh, no handshake):
    /// whether the failure has cleared.
    case watched(Watch, cleared: Bool)
    /// An operator asked for a retry now (`warren retry`), or the login this
    /// tunnel was held back for has just been proven by another tunnel.
    case retryNow
    /// Not started: another tunnel that logs in the same way was just refused
    /// (see the runtime's `LoginGate`); instead of a slot, this comes.
    case loginHeld(ExitDiagnosis)
    /// The counts of the listener warren holds for forward `index` (in the
    /// order of `TunnelConfig.forwards`) changed.
    case counted(index: Int, ListenerCounts)
    /// Stop the tunnel (shutdown, removal from the config, reload).
    case stop
}

/// How a run ended, as the runtime saw it.
public enum ChildExit: Sendable, Equatable {
    /// ssh exited with this code, or was ended by this signal (both nil: it
    /// was stopped before it started). Why is read from what it logged.
    case process(exitCode: Int32?, signal: Int32?)
    /// The run ended without an ssh of its own to ask (files not prepared,
    /// exec failed, a shared connection down): warren says why.
    case diagnosed(ExitDiagnosis)
}

/// A failure warren can watch for itself, cheaply and without ssh, so that
/// the tunnel starts the moment it clears instead of on the backoff clock.
public enum Watch: Sendable, Equatable {
    /// Another program holds a local port: can every forward's port be bound?
    case localPorts
    /// The bastion refused the connection (its sshd is down): does its port
    /// accept a TCP connection again? Only for a bastion dialled directly.
    case bastion

    /// How often it is looked at, seconds.
    public var interval: Double {
        switch self {
        case .localPorts: return 0.2
        case .bastion: return 0.25
        }
    }

    /// What to watch after a run failed with `kind`, if anything.
    public static func after(_ kind: FailureKind, tunnel: TunnelConfig) -> Watch? {
        switch kind {
        case .localPortInUse: return .localPorts
        // Behind a jump hop the refusing host cannot be dialled directly.
        case .connectionRefused where tunnel.jumps.isEmpty: return .bastion
        default: return nil
        }
    }
}

/// What a probe through the forwards found.
public enum ProbeOutcome: Sendable, Equatable {
    /// Every target answered.
    case answered
    /// A target did not: ssh accepted the connection and closed it after
    /// `closedAfter` seconds (nil when nothing listened at all).
    case failed(message: String, closedAfter: Double?)
}

/// A timer of one tunnel. The serial number tells a timer that was re-armed
/// or cancelled from the one that is armed now.
public struct TunnelTimer: Sendable, Hashable {
    public enum Purpose: Sendable, Hashable, CaseIterable {
        /// The backoff delay is over: start the next run.
        case retry
        /// The run was not ready in time: stop it.
        case readyDeadline
        /// Time for the next probe through the forwards.
        case probe
        /// SIGTERM was sent and the grace period is over: SIGKILL.
        case killGrace
        /// Look again at what is watched (see `Watch`).
        case watch
    }

    public var purpose: Purpose
    public var serial: Int

    public init(_ purpose: Purpose, serial: Int) {
        self.purpose = purpose
        self.serial = serial
    }
}

/// What the runtime must do next. The runtime only carries these out.
public enum TunnelAction: Sendable, Equatable {
    /// Ask for a start slot; `.slotGranted` follows.
    case acquireSlot
    /// Give the start slot back: the run is ready or gone.
    case releaseSlot
    /// Prepare the tunnel's files and spawn ssh as run `run`; `.spawned` and
    /// `.ssh` events follow, and always one `.exited`.
    case spawn(run: Int)
    /// Send SIGTERM to run `run`'s ssh (or keep it from starting at all).
    case terminate(run: Int)
    /// SIGKILL run `run`'s whole process group (ssh and any jump-hop ssh).
    case kill(run: Int)
    /// Deliver `.timer(timer)` after this many seconds.
    case arm(TunnelTimer, after: Double)
    /// The timer will not be wanted: it may be dropped.
    case cancel(TunnelTimer)
    /// Probe every local forward of run `run`; a connection that stays open
    /// for `hold` seconds counts as answered. `.probed` follows.
    case probe(run: Int, hold: Double)
    /// Look at what is watched; `.watched` follows.
    case check(Watch)
}
