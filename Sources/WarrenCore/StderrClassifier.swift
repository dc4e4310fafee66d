/// Why an ssh run ended: the failure kind and ssh's own line that says so (or,
/// when ssh stated nothing, a sentence of warren's).
public struct ExitDiagnosis: Sendable, Equatable {
    public var kind: FailureKind
    public var message: String

    public init(kind: FailureKind, message: String) {
        self.kind = kind
        self.message = message
    }
}

/// Reads the stderr of `ssh -v -F FILE -N ALIAS` (OpenSSH 9.2), one line at a
/// time. Pure: no processes, clocks or files.
///
/// The patterns come from the real client's output, recorded in
/// `Tests/WarrenCoreTests/Fixtures/stderr/` by `record-stderr.sh`. Messages name
/// the HostName (or the HostKeyAlias for host-key lines), never warren's alias;
/// channel numbers and ports vary, so nothing here depends on them.
///
/// Decisions worth knowing:
/// - Debug lines (`debug1:`..`debug3:`) never yield a failure, only the readiness
///   events: ssh's debug chatter repeats failures in other words (`debug1:
///   connect to address ... Connection refused` precedes `ssh: connect to host
///   ... Connection refused`).
/// - `Host key verification failed.` is the generic last line of every host key
///   failure, after the specific one (`No ED25519 host key is known for ...` or
///   `Host key for ... has changed ...`). ``classify(line:)`` returns nil for it,
///   so that it cannot overwrite the specific kind; ``diagnose(lines:exitStatus:)``
///   uses it (as `host_key_unknown`) only when no other failure line is there.
/// - `Network is unreachable` and `No route to host` are `connect_timeout`: like
///   a black-holed connect, the bastion cannot be reached from here, and the
///   fix (network path, allowlist, `host`/`port`) is the same.
/// - A bad generated config (`Bad configuration option`) is `unknown`: it is
///   warren's bug or an unsupported ssh, not the user's tunnel.
/// - `channel N: open failed: administratively prohibited: ...` is
///   `.failure(.forwardingForbidden)`; any other `channel N: open failed: ...`
///   is `.channelOpenFailed` (the target is unreachable from the bastion).
public struct StderrClassifier: Sendable {
    public init() {}

    /// Classify one stderr line. A trailing `\r` (and `\n`) is stripped first.
    /// Returns nil for debug chatter and for lines that mean nothing to warren.
    ///
    /// Failures are reported line by line, so one run can yield several (a
    /// missing key, then `Permission denied`); to know why a run ended, use
    /// ``diagnose(lines:exitStatus:)`` over all its lines.
    public func classify(line: String) -> SSHEvent? {
        let line = Self.stripped(line)
        if Self.isDebug(line) {
            return Self.debugEvent(line)
        }
        if let reason = Self.channelOpenFailure(line) {
            if Self.isProhibited(reason) {
                return .failure(.forwardingForbidden, message: String(line))
            }
            return .channelOpenFailed(message: String(line))
        }
        if line.hasPrefix("Authenticated to ") {
            return .authenticated
        }
        if let rule = Self.failureRule(line), !rule.generic {
            return .failure(rule.kind, message: String(line))
        }
        if Self.isNotice(line) {
            return .notice(String(line))
        }
        return nil
    }

    /// Whether the line is debug chatter (`debug1:`, `debug2:`, `debug3:`): the
    /// runtime hides these unless `--log-level debug`.
    public static func isDebug(_ line: String) -> Bool {
        isDebug(Substring(line))
    }

    /// Why a run that ended failed, from all of its stderr lines (in any order;
    /// CRs are stripped) and its exit status (nil when it was killed by a signal
    /// or is not known).
    ///
    /// - The most telling failure line wins: specific before generic, e.g. a
    ///   missing or world-readable key file before the `Permission denied
    ///   (publickey).` it causes, `Host key for ... has changed` before `Host key
    ///   verification failed.`, a jump hop's own error before the outer ssh's
    ///   `Connection closed by UNKNOWN port 65535`, a terminal failure before a
    ///   failed channel open. Among lines of equal weight, the first wins.
    /// - A failed channel open (the target did not answer) counts as
    ///   `target_unreachable`, below every failure that ends ssh.
    /// - No failure line, but ssh said something warren does not recognise:
    ///   `unknown`, with the last such line.
    /// - Nothing at all (only debug chatter, notices, the version banner or
    ///   the byte counts): `connection_lost`, with a sentence naming the exit status.
    ///
    /// - Parameter jumpHops: the tunnel's ProxyJump hops. A failed channel open
    ///   before the last hop has authenticated is a hop's `ssh -W` failing to
    ///   reach the next host (the bastion), not a target: it is named by its
    ///   reason (`connection_refused`, `dns_failure`, ...) and outranks the
    ///   outer ssh's generic lines.
    public static func diagnose(lines: [String], exitStatus: Int32?, jumpHops: Int = 0) -> ExitDiagnosis {
        let classifier = StderrClassifier()
        var best: (rank: Int, kind: FailureKind, message: String)?
        var unrecognised: String?
        var authentications = 0
        var keyAccepted = false

        for raw in lines {
            let line = stripped(raw)
            // A jump hop accepting its own key says nothing of the bastion's:
            // only an acceptance after every hop has logged in is the bastion's.
            if isDebug(line) && line.hasPrefix(acceptedKeyLine) && authentications >= jumpHops { keyAccepted = true }
            if line.isEmpty || isDebug(line) {
                continue
            }
            if line.hasPrefix("Authenticated to ") { authentications += 1 }
            var candidate: (rank: Int, kind: FailureKind)?
            if jumpHops > 0, authentications <= jumpHops, channelOpenFailure(line) != nil {
                let hop = hopChannelFailure(String(line))
                if best == nil || Rank.specific > best!.rank {
                    best = (Rank.specific, hop.kind, hop.message)
                }
                continue
            } else if let reason = channelOpenFailure(line) {
                candidate = isProhibited(reason)
                    ? (Rank.channelForbidden, .forwardingForbidden)
                    : (Rank.channelFailed, .targetUnreachable)
            } else if let rule = failureRule(line) {
                // Before the banner of a host after every login: only an ssh
                // nested in this one (a hop's) can say that; it is generic.
                candidate = rule.kind == .addressBlocked && authentications > jumpHops
                    ? (Rank.genericLost, .connectionLost) : (rule.rank, rule.kind)
            }
            if let candidate {
                if best == nil || candidate.rank > best!.rank {
                    best = (candidate.rank, candidate.kind, String(line))
                }
                continue
            }
            if classifier.classify(line: String(line)) == nil && !isBenign(line) {
                unrecognised = String(line)
            }
        }

        if let best {
            // The server said it would take the key, yet ssh gave up: it could
            // not sign, which for a key file means a passphrase it does not have.
            if best.kind == .authFailed && keyAccepted {
                return ExitDiagnosis(kind: .keyPassphrase, message: best.message)
            }
            return ExitDiagnosis(kind: best.kind, message: best.message)
        }
        if let unrecognised {
            return ExitDiagnosis(kind: .unknown, message: unrecognised)
        }
        let how = exitStatus.map { "ssh exited with status \($0)" } ?? "ssh ended"
        return ExitDiagnosis(kind: .connectionLost, message: "\(how) without stating an error")
    }

    /// `debug1: Server accepts key: PATH ...`: the bastion would accept the key.
    static let acceptedKeyLine = "debug1: Server accepts key: "

    /// Whether the runtime must keep this line for ``diagnose(lines:exitStatus:jumpHops:)``:
    /// every non-debug line, and the few debug lines it reads.
    public static func keepsForDiagnosis(_ line: String) -> Bool {
        !isDebug(line) || line.hasPrefix(acceptedKeyLine)
    }

    /// The kind for a jump hop's `channel N: open failed: REASON` towards the next host.
    /// A `channel N: open failed` before the bastion's login: a jump hop could
    /// not open the channel towards the next host (not the target's fault).
    public static func hopChannelFailure(_ line: String) -> ExitDiagnosis {
        ExitDiagnosis(kind: hopFailureKind(line), message: "a jump hop could not reach the next host: \(line)")
    }

    /// Only the reason decides `forwardingForbidden`; the rest of the line is
    /// the hop's own description, read only to choose among kinds that are
    /// retried alike.
    public static func hopFailureKind(_ line: String) -> FailureKind {
        if let reason = channelOpenFailure(Substring(line)), isProhibited(reason) { return .forwardingForbidden }
        if line.contains("Name or service not known") || line.contains("name resolution") || line.contains("nodename nor servname") {
            return .dnsFailure
        }
        if line.contains("Connection refused") { return .connectionRefused }
        if line.contains("timed out") || line.contains("No route to host") || line.contains("Network is unreachable") {
            return .connectTimeout
        }
        return .connectionLost
    }

    /// For `channel N: open failed: REASON`, REASON; else nil.
    /// `channel N: open failed: REASON: DESCRIPTION`: REASON is ssh's text for
    /// the protocol's reason code, DESCRIPTION the server's own words. Only
    /// the reason is judged: a description saying "administratively
    /// prohibited" must not make a tunnel wait for a human.
    static func isProhibited(_ reason: Substring) -> Bool {
        reason.hasPrefix("administratively prohibited")
    }

    static func channelOpenFailure(_ line: Substring) -> Substring? {
        guard line.hasPrefix("channel ") else { return nil }
        let rest = line.dropFirst("channel ".count)
        let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty else { return nil }
        let after = rest.dropFirst(digits.count)
        let marker = ": open failed: "
        guard after.hasPrefix(marker) else { return nil }
        return after.dropFirst(marker.count)
    }

    static func debugEvent(_ line: Substring) -> SSHEvent? {
        if line.hasPrefix("debug1: Entering interactive session") {
            return .enteredSession
        }
        if line.hasPrefix("debug1: forwarding_success: all expected forwarding replies received") {
            return .remoteForwardsConfirmed
        }
        if line.hasPrefix("debug1: Authentication succeeded") {
            return .authenticated
        }
        return connectionEvent(line)
    }

    /// The lines at `-v` that follow connections through the forwards (see
    /// `ConnectionCounter`); recorded in Fixtures/stderr/connections.txt.
    static func connectionEvent(_ line: Substring) -> SSHEvent? {
        if let rest = line.after("debug1: Connection to port "), line.hasSuffix(" requested.") {
            return Int(rest.prefix { $0.isASCII && $0.isNumber }).map { .forwardRequested(listenPort: $0) }
        }
        if let rest = line.after("debug1: client_request_forwarded_tcpip: listen "),
            let marker = rest.range(of: " port "), let number = Int(rest[marker.upperBound...].prefix { $0.isASCII && $0.isNumber })
        {
            return .remoteForwardRequested(listenPort: number)
        }
        guard let rest = line.after("debug1: channel ") else { return nil }
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard let channel = Int(digits) else { return nil }
        let after = rest.dropFirst(digits.count)
        if after.hasPrefix(": new direct-tcpip") || after.hasPrefix(": new dynamic-tcpip") || after.hasPrefix(": new forwarded-tcpip") {
            return .channelOpened(channel: channel)
        }
        if after.hasPrefix(": free: "), !after.hasPrefix(": free: port listener") {
            return .channelClosed(channel: channel)
        }
        return nil
    }

    /// The channel number of `channel N: open failed: ...`.
    public static func channelNumber(ofOpenFailure line: String) -> Int? {
        guard let rest = Substring(line).after("channel ") else { return nil }
        return Int(rest.prefix { $0.isASCII && $0.isNumber })
    }

    /// A line worth showing the user that is not a failure (`Warning: ...`).
    public static func isNotice(_ line: String) -> Bool { isNotice(Substring(line)) }

    static func isNotice(_ line: Substring) -> Bool {
        line.hasPrefix("Warning: ")
            // accept-new when the known_hosts directory is missing: ssh still connects.
            || line.hasPrefix("Failed to add the host to the list of known hosts")
    }

    /// Non-debug lines that ssh prints on every run and that say nothing about
    /// why it ended.
    static func isBenign(_ line: Substring) -> Bool {
        line.hasPrefix("OpenSSH_")  // the version banner, at -v
            || line.hasPrefix("Transferred: sent ")
            || line.hasPrefix("Bytes per second: ")
            || line.hasPrefix("Killed by signal ")  // a signal warren or the hop's parent sent
            || isPostQuantumWarning(line)
    }

    /// The three lines OpenSSH 10.1+ prints when the server offers no
    /// post-quantum key exchange (Dropbear, OpenSSH before 9.0), recorded in
    /// Fixtures/stderr-10.5/success_dropbear.txt. Noise for warren: kept at debug.
    static func isPostQuantumWarning(_ line: Substring) -> Bool {
        line.hasPrefix("** WARNING: connection is not using a post-quantum key exchange algorithm")
            || line.hasPrefix("** This session may be vulnerable to \"store now, decrypt later\" attacks")
            || line.hasPrefix("** The server may need to be upgraded. See https://openssh.com/pq.html")
    }

    static func isDebug(_ line: Substring) -> Bool {
        line.hasPrefix("debug1:") || line.hasPrefix("debug2:") || line.hasPrefix("debug3:")
    }

    static func stripped(_ line: String) -> Substring {
        var s = Substring(line)
        while let last = s.last, last == "\r" || last == "\n" || last == "\r\n" {
            s.removeLast()
        }
        return s
    }
}

extension Substring {
    /// What follows `prefix`, when the string starts with it.
    func after(_ prefix: String) -> Substring? {
        hasPrefix(prefix) ? dropFirst(prefix.count) : nil
    }
}
