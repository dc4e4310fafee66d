/// What a `TunnelMachine` reads off its state without changing it: the
/// probe hold, a run's diagnosis, the state status shows.
extension TunnelMachine {
    /// The hold for the next probe: while degraded, three times what a dead
    /// target's close took (at least 0.25 s), so the return is seen quickly.
    var nextProbeHold: Double {
        guard state == .degraded || suspectProbe, let closeLatency else { return probeHold }
        return min(probeHold, max(0.25, 3 * closeLatency))
    }

    /// Why a run ended: what ssh logged, with its exit status, or warren's word.
    func diagnosis(of exit: ChildExit) -> ExitDiagnosis {
        switch exit {
        case .diagnosed(let diagnosis):
            return diagnosis
        case .process(nil, nil):
            return ExitDiagnosis(kind: .connectionLost, message: "ssh was stopped before it started")
        case .process(let code, let signal):
            let diagnosis = transcript.diagnosis(exitStatus: code ?? 128 + (signal ?? 0))
            if let signal, diagnosis.kind == .connectionLost || diagnosis.kind == .unknown {
                // Killed from outside (OOM killer, an operator's kill -9): ssh said nothing.
                return ExitDiagnosis(kind: .connectionLost, message: "ssh was killed by signal \(signal)")
            }
            return diagnosis
        }
    }

    /// The state status shows: `up` while reconnecting after an idle close,
    /// so that a bastion's idle timer does not make the tunnel flap.
    public var shownState: TunnelState {
        quietReconnect && (state == .starting || state == .connecting) ? .up : state
    }
}
