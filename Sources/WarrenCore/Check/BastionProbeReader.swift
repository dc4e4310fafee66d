/// Reads the stderr of the one-shot ssh that `warren check` runs when no
/// supervisor does, and says what the bastion answered. Pure.
///
/// Two shapes of ssh, both with the tunnel's generated ssh_config:
/// - `ssh -vv -W HOST:PORT ALIAS` asks the bastion to connect to a target.
///   `-W` implies ClearAllForwardings, so no local port is bound. The channel
///   is open when `debug2: channel N: open confirm ...` appears after the
///   bastion itself authenticated; it failed when `channel N: open failed: ...`
///   does. Every jump hop is an `ssh -v -W` (the generated ProxyCommand) logging
///   to the same place: its lines count toward the logins, and an `open failed`
///   before the last login is a hop that could not reach the next host.
/// - `ssh -v -o SessionType=none -o ClearAllForwardings=yes ALIAS`, for a tunnel
///   with no TCP target to ask about: logged in when the (hops+1)th
///   `debug1: Entering interactive session.` appears.
public struct BastionProbeReader: Sendable {
    public enum Shape: Sendable {
        /// `ssh -vv -W HOST:PORT`.
        case stdioForward
        /// A session with no command and no forwards.
        case session
    }

    public let shape: Shape
    /// What ssh said (with its jump hops).
    public private(set) var transcript: SSHTranscript

    public init(shape: Shape, hops: Int) {
        self.shape = shape
        self.transcript = SSHTranscript(hops: hops)
    }

    /// Non-debug lines, oldest first (the last 60), for the diagnosis.
    public var lines: [String] { transcript.lines }

    /// Whether the bastion has answered yes: the target connection (or the
    /// session) is open, and ssh may be stopped.
    public var answeredYes: Bool {
        switch shape {
        case .stdioForward: return transcript.channelConfirmed
        case .session: return transcript.sessionOpen
        }
    }

    /// Feeds one line of ssh's log. Returns `answeredYes`.
    @discardableResult
    public mutating func read(_ line: String) -> Bool {
        transcript.read(line)
        return answeredYes
    }

    /// The answer once ssh has exited (`exitStatus` nil when a signal ended it).
    public func answer(exitStatus: Int32?) -> BastionAnswer {
        if answeredYes { return .reachable }
        if let failure = transcript.channelFailure {
            // After the bastion's login: the target's answer. Before: a hop's.
            return transcript.loggedIn ? .targetFailed(failure.kind, failure.message) : .failed(failure.kind, failure.message)
        }
        if exitStatus == 0 && shape == .stdioForward && transcript.loggedIn {
            // The target took the connection and closed it before the confirmation was read.
            return .reachable
        }
        let diagnosis = transcript.diagnosis(exitStatus: exitStatus)
        return .failed(diagnosis.kind, diagnosis.message)
    }
}
