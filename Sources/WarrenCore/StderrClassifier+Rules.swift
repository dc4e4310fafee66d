/// The failure lines of ssh's log and how telling each is (see
/// `StderrClassifier`'s type doc for the decisions behind them).
extension StderrClassifier {
    // MARK: - Rules

    /// How telling a failure line is; ``diagnose(lines:exitStatus:)`` keeps the highest.
    enum Rank {
        /// The key file itself: causes the `Permission denied` that follows.
        static let keyFile = 100
        /// Host key lines that name the problem.
        static let hostKey = 95
        /// Lines that state why ssh could not connect or set up a forward.
        static let specific = 90
        /// Companion lines of the same failure, slightly less telling.
        static let companion = 89
        static let companionLast = 88
        /// `kex_exchange_identification: Connection closed by remote host` (or
        /// reset): above the `Connection reset by H port P` that follows it,
        /// below every line a jump hop prints about its own failure.
        static let beforeBanner = 80
        static let keepalive = 70
        static let connectionLost = 60
        static let authFailed = 50
        static let channelForbidden = 40
        static let channelFailed = 30
        /// `kex_exchange_identification: Connection closed ...`, `Connection closed
        /// by UNKNOWN port 65535`: what the outer ssh says after any hop failure.
        static let genericLost = 20
        /// `Host key verification failed.`
        static let genericHostKey = 10
    }

    struct Rule: Equatable {
        var kind: FailureKind
        var rank: Int
        /// Generic lines: ``classify(line:)`` returns nil for them (see type doc).
        var generic = false
    }

    /// The failure a non-debug, non-channel line states, if any. Order matters
    /// where patterns overlap; ranks only order lines of one run.
    static func failureRule(_ line: Substring) -> Rule? {
        // ssh quoting the server's disconnect message: `Received disconnect
        // from H port P:N: MESSAGE`, `Disconnected from ...`. The message is
        // the server's text, whatever it imitates (a changed host key, a
        // refused login): the connection was lost, nothing more.
        if line.hasPrefix("Received disconnect from ") || line.hasPrefix("Disconnected from ") {
            return Rule(kind: .connectionLost, rank: Rank.connectionLost)
        }
        // Key file (client side, found after connecting).
        if line.hasPrefix("no such identity: ") {
            return Rule(kind: .keyMissing, rank: Rank.keyFile)
        }
        if line.hasPrefix("Permissions ") && line.hasSuffix(" are too open.") {
            return Rule(kind: .keyPermissions, rank: Rank.keyFile)
        }
        if line.hasPrefix("Load key ") && line.hasSuffix(": bad permissions") {
            return Rule(kind: .keyPermissions, rank: Rank.keyFile - 1)
        }
        if line.contains("UNPROTECTED PRIVATE KEY FILE") {
            return Rule(kind: .keyPermissions, rank: Rank.keyFile - 2)
        }
        // Host keys.
        if line.hasPrefix("Host key for ") && line.contains(" has changed") {
            return Rule(kind: .hostKeyChanged, rank: Rank.hostKey)
        }
        if line.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            return Rule(kind: .hostKeyChanged, rank: Rank.hostKey - 1)
        }
        if line.hasPrefix("No ") && line.contains(" host key is known for ") {
            return Rule(kind: .hostKeyUnknown, rank: Rank.hostKey)
        }
        if line == "Host key verification failed." {
            return Rule(kind: .hostKeyUnknown, rank: Rank.genericHostKey, generic: true)
        }
        // The generated ssh_config.
        if line.contains(": Bad configuration option: ") {
            return Rule(kind: .unknown, rank: Rank.specific)
        }
        if line.contains(": terminating, ") && line.hasSuffix(" bad configuration options") {
            return Rule(kind: .unknown, rank: Rank.companion)
        }
        // Reaching the bastion.
        if line.contains("Could not resolve hostname ") {
            return Rule(kind: .dnsFailure, rank: Rank.specific)
        }
        if line.contains("connect to host ") && line.hasSuffix(": Connection refused") {
            return Rule(kind: .connectionRefused, rank: Rank.specific)
        }
        if line.contains("Connection timed out") {
            // `ssh: connect to host H port P: Connection timed out`, and
            // `Connection timed out during banner exchange`.
            return Rule(kind: .connectTimeout, rank: Rank.specific)
        }
        if line.hasPrefix("Connection to ") && line.hasSuffix(" timed out") {
            // `Connection to H port P timed out`, after the banner timeout.
            return Rule(kind: .connectTimeout, rank: Rank.companion)
        }
        if line.contains("Network is unreachable") || line.contains("No route to host") {
            return Rule(kind: .connectTimeout, rank: Rank.specific)
        }
        // Forwards.
        if line.contains("Address already in use") {
            // `bind [127.0.0.1]:P: Address already in use`
            return Rule(kind: .localPortInUse, rank: Rank.specific)
        }
        if line.contains("cannot listen to port") {
            return Rule(kind: .localPortInUse, rank: Rank.companion)
        }
        if line.hasPrefix("Could not request local forwarding") {
            return Rule(kind: .localPortInUse, rank: Rank.companionLast)
        }
        if line.contains("remote port forwarding failed for listen ") {
            // `Error: ...` with ExitOnForwardFailure, `Warning: ...` without.
            return Rule(kind: .remoteForwardFailed, rank: Rank.specific)
        }
        // Closed before the server's banner: the server refuses this address
        // (penalties, MaxStartups, a firewall). Behind a jump hop the outer
        // ssh says the same after a hop's own failure, which outranks it.
        if line == "kex_exchange_identification: Connection closed by remote host"
            || line == "kex_exchange_identification: read: Connection reset by peer"
        {
            return Rule(kind: .addressBlocked, rank: Rank.beforeBanner)
        }
        // An established connection.
        if line.hasPrefix("Timeout, server ") && line.hasSuffix(" not responding.") {
            return Rule(kind: .keepaliveTimeout, rank: Rank.keepalive)
        }
        if line.hasPrefix("Connection to ") && line.hasSuffix(" closed by remote host.") {
            return Rule(kind: .connectionLost, rank: Rank.connectionLost)
        }
        if line.contains("Connection reset by") || line.contains("Broken pipe")
            || line.hasPrefix("client_loop: send disconnect")
        {
            return Rule(kind: .connectionLost, rank: Rank.connectionLost)
        }
        // Authentication: after the key-file rules, whose failures end here too.
        if line.contains("Permission denied (") {
            return Rule(kind: .authFailed, rank: Rank.authFailed)
        }
        if line.hasPrefix("kex_exchange_identification: ") || line.hasPrefix("Connection closed by ") {
            return Rule(kind: .connectionLost, rank: Rank.genericLost)
        }
        return nil
    }
}
