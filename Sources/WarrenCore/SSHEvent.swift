/// Something a line of `ssh -v -N` stderr tells warren about a tunnel.
///
/// Produced by ``StderrClassifier/classify(line:)`` one line at a time. Events are
/// facts about the line, not the tunnel's final state: a run can state several
/// failures (a missing key file, then `Permission denied (publickey).`), so the
/// reason a run *ended* is chosen by ``StderrClassifier/diagnose(lines:exitStatus:)``.
public enum SSHEvent: Sendable, Equatable {
    /// `Authenticated to HOST ([IP]:PORT) using "publickey".` (or, from older
    /// clients, `debug1: Authentication succeeded (publickey).`). Comes *before*
    /// the local forwards are bound, so it is not readiness. With ProxyJump each
    /// hop prints it (the outer one says `(via proxy)`).
    case authenticated
    /// `debug1: Entering interactive session.` With ExitOnForwardFailure, every
    /// local and dynamic forward is bound once the *last* hop prints it. With
    /// ProxyJump each hop's ssh prints it too (the hop first), so a tunnel with
    /// N jump hops is ready at the (N+1)th. Not enough for remote forwards: ssh
    /// prints it before the server has answered them (see
    /// ``remoteForwardsConfirmed``).
    case enteredSession
    /// `debug1: forwarding_success: all expected forwarding replies received`:
    /// the server accepted every remote forward.
    case remoteForwardsConfirmed
    /// A connection through a forward could not be opened on the bastion's side
    /// (`channel N: open failed: connect failed: Connection refused`, `...: Name or
    /// service not known`): the target is unreachable. ssh keeps running.
    /// Carries ssh's whole line.
    case channelOpenFailed(message: String)
    /// A failure ssh states, with its kind and ssh's own line. Most of them end
    /// the run; `forwardingForbidden` (`channel N: open failed: administratively
    /// prohibited: open failed`) does not.
    case failure(FailureKind, message: String)
    /// `debug1: Connection to port P forwarding to H port Q requested.`: a
    /// client connected to the local or dynamic forward listening on port P.
    case forwardRequested(listenPort: Int)
    /// `debug1: client_request_forwarded_tcpip: listen H port P, originator ...`:
    /// the server passed on a connection to remote forward P.
    case remoteForwardRequested(listenPort: Int)
    /// `debug1: channel N: new direct-tcpip` (or `dynamic-tcpip`,
    /// `forwarded-tcpip`): the channel of the connection just requested.
    case channelOpened(channel: Int)
    /// `debug1: channel N: free: ...` for a connection's channel: it closed.
    case channelClosed(channel: Int)
    /// A line worth showing the user that is not a failure, such as
    /// `Warning: Permanently added 'HOST' (ED25519) to the list of known hosts.`
    case notice(String)
}
