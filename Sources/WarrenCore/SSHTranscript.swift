/// What ssh said in one run, read once. The tunnel machine, `warren check`
/// and `warren doctor` all feed ssh's log lines here and ask it: has the
/// bastion (after every jump hop) logged in, is the session open, are the
/// forwards ready, did a channel fail and whose, and why did the run end.
/// Pure; lines only from ssh's own log, never the server's text.
///
/// With jump hops, each hop's ssh logs to the same place (the generated
/// ProxyCommand), hop first: a login, a session and a channel of its own
/// come before the bastion's. So "logged in" is the (hops+1)th `Authenticated
/// to`, the session is the (hops+1)th `Entering interactive session.`, and a
/// channel that fails before the bastion logged in is a hop that could not
/// reach the next host, not a target.
public struct SSHTranscript: Sendable {
    /// Jump hops before the bastion.
    public let hops: Int
    public private(set) var logins = 0
    public private(set) var sessions = 0
    /// `forwarding_success`: the server accepted every remote forward.
    public private(set) var remoteForwardsConfirmed = false
    /// `debug2: channel N: open confirm` after the bastion's login (ssh -vv -W).
    public private(set) var channelConfirmed = false
    /// The last 60 lines that are not debug chatter (and the few debug lines
    /// a diagnosis needs, see `StderrClassifier.keepsForDiagnosis`), oldest first.
    public private(set) var lines: [String] = []
    /// The first channel that failed: the target's, or a hop's.
    public private(set) var channelFailure: ExitDiagnosis?
    private let classifier = StderrClassifier()

    public init(hops: Int = 0) {
        self.hops = hops
    }

    public var loggedIn: Bool { logins > hops }
    public var sessionOpen: Bool { sessions > hops }

    /// Every local and dynamic forward is bound (with `ExitOnForwardFailure`),
    /// and remote ones are confirmed when there are any.
    public func forwardsReady(remote: Bool) -> Bool { sessionOpen && (remoteForwardsConfirmed || !remote) }

    /// Reads one line of ssh's log (a trailing CR is stripped); returns what it means.
    @discardableResult
    public mutating func read(_ raw: String) -> SSHEvent? {
        let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : raw
        if StderrClassifier.keepsForDiagnosis(line) {
            lines.append(line)
            if lines.count > 60 { lines.removeFirst(lines.count - 60) }
        } else if line.hasPrefix("debug2: channel "), line.contains(": open confirm "), loggedIn {
            channelConfirmed = true
        }
        let event = classifier.classify(line: line)
        switch event {
        case .authenticated?: logins += 1
        case .enteredSession?: sessions += 1
        case .remoteForwardsConfirmed?: remoteForwardsConfirmed = true
        case .channelOpenFailed(let message)?: recordChannelFailure(message, kind: .targetUnreachable)
        case .failure(.forwardingForbidden, let message)?: recordChannelFailure(message, kind: .forwardingForbidden)
        default: break
        }
        return event
    }

    private mutating func recordChannelFailure(_ line: String, kind: FailureKind) {
        guard channelFailure == nil else { return }
        channelFailure = loggedIn
            ? ExitDiagnosis(kind: kind, message: line)
            : StderrClassifier.hopChannelFailure(line)
    }

    /// Why the run ended, from everything it logged and its exit status (nil
    /// when a signal ended it or it is not known).
    public func diagnosis(exitStatus: Int32?) -> ExitDiagnosis {
        StderrClassifier.diagnose(lines: lines, exitStatus: exitStatus, jumpHops: hops)
    }
}
