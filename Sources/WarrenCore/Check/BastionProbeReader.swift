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
    /// ProxyJump hops before the bastion.
    public let hops: Int
    private(set) var confirmations = 0
    private(set) var sessions = 0
    private(set) var authentications = 0
    /// Non-debug lines, oldest first (the last 60), for the diagnosis.
    public private(set) var lines: [String] = []
    /// The first `channel N: open failed` that came after the bastion itself
    /// authenticated, with whether the hops were all through.
    private var finalChannelFailure: (kind: FailureKind, line: String)?
    private var hopChannelFailure: (kind: FailureKind, line: String)?

    public init(shape: Shape, hops: Int) {
        self.shape = shape
        self.hops = hops
    }

    /// Whether the bastion has answered yes: the target connection (or the
    /// session) is open, and ssh may be stopped.
    public var answeredYes: Bool {
        switch shape {
        case .stdioForward: return confirmations > 0
        case .session: return sessions > hops
        }
    }

    /// Feeds one stderr line (a trailing CR is stripped). Returns `answeredYes`.
    @discardableResult
    public mutating func read(_ raw: String) -> Bool {
        let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : raw
        if line.hasPrefix("debug2: channel "), line.contains(": open confirm ") {
            // Only the outer ssh logs at -vv; still, only a confirmation after
            // the bastion's own login is the target's.
            if authentications > hops { confirmations += 1 }
        } else if line.hasPrefix("debug1: Entering interactive session") {
            sessions += 1
        } else if !StderrClassifier.isDebug(line) {
            lines.append(line)
            if lines.count > 60 { lines.removeFirst(lines.count - 60) }
            if line.hasPrefix("Authenticated to ") {
                authentications += 1
            } else if case .channelOpenFailed(let message)? = StderrClassifier().classify(line: line) {
                record(channelFailure: message, kind: .targetUnreachable)
            } else if case .failure(.forwardingForbidden, let message)? = StderrClassifier().classify(line: line) {
                record(channelFailure: message, kind: .forwardingForbidden)
            }
        }
        return answeredYes
    }

    private mutating func record(channelFailure line: String, kind: FailureKind) {
        if authentications > hops {
            if finalChannelFailure == nil { finalChannelFailure = (kind, line) }
        } else if hopChannelFailure == nil {
            hopChannelFailure = (StderrClassifier.hopFailureKind(line), line)
        }
    }

    /// The answer once ssh has exited (`exitStatus` nil when a signal ended it).
    public func answer(exitStatus: Int32?) -> BastionAnswer {
        if answeredYes { return .reachable }
        if let final = finalChannelFailure { return .targetFailed(final.kind, final.line) }
        if exitStatus == 0 && shape == .stdioForward && authentications > hops {
            // The target took the connection and closed it before the confirmation was read.
            return .reachable
        }
        let diagnosis = StderrClassifier.diagnose(lines: lines, exitStatus: exitStatus)
        if let hop = hopChannelFailure, diagnosis.kind == .targetUnreachable || diagnosis.kind == .forwardingForbidden || diagnosis.kind == .connectionLost {
            // A hop could not reach the next host: that is the failure, not a target's.
            return .failed(hop.kind, hop.line)
        }
        return .failed(diagnosis.kind, diagnosis.message)
    }
}
