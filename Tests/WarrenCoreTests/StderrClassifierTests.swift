import Foundation
import Testing
import WarrenCore

/// Which client recorded a fixture: `Fixtures/record-stderr.sh` writes the
/// 9.2 client's runs to `stderr/` and another client's (`SSH=.../bin/ssh`) to
/// `stderr-X.Y/`, each against the same servers.
enum ClientSet: String, CaseIterable, Sendable {
    case openSSH92 = "stderr"
    case openSSH105 = "stderr-10.5"

    var directory: String { "Fixtures/\(rawValue)" }
}

/// The stderr and exit status of one real `ssh -v -F CONFIG -N warren-demo` run,
/// recorded by `Fixtures/record-stderr.sh` against a real sshd on loopback.
struct Fixture {
    let name: String
    let lines: [String]
    let exitStatus: Int32

    static func load(_ name: String, from set: ClientSet = .openSSH92) throws -> Fixture {
        let text = try String(contentsOf: try url(name, "txt", set), encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        let exitText = try String(contentsOf: try url(name, "exit", set), encoding: .utf8)
        let status = try #require(Int32(exitText.trimmingCharacters(in: .whitespacesAndNewlines)))
        return Fixture(name: name, lines: lines, exitStatus: status)
    }

    static func url(_ name: String, _ ext: String, _ set: ClientSet) throws -> URL {
        try #require(
            Bundle.module.url(forResource: name, withExtension: ext, subdirectory: set.directory),
            "fixture \(set.directory)/\(name).\(ext) is not in the test bundle")
    }

    /// Every recorded situation of one client (each `.txt` in its directory).
    static func allNames(in set: ClientSet = .openSSH92) throws -> [String] {
        // (Bundle.urls(forResourcesWithExtension:) returns [NSURL] on Linux.)
        let dir = try #require(
            Bundle.module.url(forResource: set.rawValue, withExtension: nil, subdirectory: "Fixtures"))
        return try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { $0.hasSuffix(".txt") }
            .map { String($0.dropLast(".txt".count)) }
            .sorted()
    }

    /// (set, name) for every fixture of every client.
    static func everyRecording() throws -> [RecordedName] {
        try ClientSet.allCases.flatMap { set in try allNames(in: set).map { RecordedName(set: set, name: $0) } }
    }

    func events(_ classifier: StderrClassifier = StderrClassifier()) -> [SSHEvent] {
        lines.compactMap { classifier.classify(line: $0) }
    }
}

/// One fixture of one client, as a test argument.
struct RecordedName: Sendable, CustomTestStringConvertible {
    let set: ClientSet
    let name: String
    var testDescription: String { "\(set.rawValue)/\(name)" }
}

extension SSHEvent {
    var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
    var isChannelOpenFailed: Bool {
        if case .channelOpenFailed = self { return true }
        return false
    }
}

// MARK: - How each recorded run ended

struct DiagnosisCase: Sendable, CustomTestStringConvertible {
    let fixture: String
    let kind: FailureKind
    /// Part of the expected message: ssh's own line, or warren's sentence.
    let fragment: String
    /// ssh's recorded exit status (0: still up, ended by the recorder's SIGTERM).
    var exit: Int32 = 255
    /// The client that recorded it.
    var set: ClientSet = .openSSH92
    var testDescription: String { "\(set.rawValue)/\(fixture) -> \(kind.rawValue)" }

    func recorded(by set: ClientSet, fragment: String? = nil) -> DiagnosisCase {
        DiagnosisCase(fixture: fixture, kind: kind, fragment: fragment ?? self.fragment, exit: exit, set: set)
    }
}

/// Fixture -> why the run ended, for the 9.2 client. The success runs were
/// ended by SIGTERM: no failure line, so the process "died" without a reason
/// (connection_lost).
let diagnosisCases92: [DiagnosisCase] = [
    .init(fixture: "success", kind: .connectionLost, fragment: "ssh exited with status 0 without stating an error", exit: 0),
    .init(fixture: "success_remote_forward", kind: .connectionLost, fragment: "without stating an error", exit: 0),
    .init(fixture: "success_proxyjump", kind: .connectionLost, fragment: "without stating an error", exit: 0),
    .init(fixture: "accept_new_first_use", kind: .connectionLost, fragment: "without stating an error", exit: 0),
    .init(fixture: "auth_failed", kind: .authFailed, fragment: "root@127.0.0.1: Permission denied (publickey)."),
    // An expired user certificate (ssh 9.2, and 10.5 in stderr-10.5, against sshd 9.2 with
    // TrustedUserCAKeys; sshd logged `Certificate invalid: expired`): the client says only
    // what it says for any refused key. warren decides certificate_expired from the certificate's own validity.
    .init(fixture: "certificate_expired", kind: .authFailed, fragment: "root@127.0.0.1: Permission denied (publickey,password,keyboard-interactive)."),
    .init(fixture: "host_key_unknown", kind: .hostKeyUnknown, fragment: "No ED25519 host key is known for warren-demo"),
    .init(fixture: "host_key_changed", kind: .hostKeyChanged, fragment: "Host key for warren-demo has changed"),
    .init(fixture: "connection_refused", kind: .connectionRefused, fragment: "ssh: connect to host 127.0.0.1 port"),
    .init(fixture: "proxyjump_hop_refused", kind: .connectionRefused, fragment: ": Connection refused"),
    .init(fixture: "dns_failure", kind: .dnsFailure, fragment: "Could not resolve hostname nonexistent.invalid: Name or service not known"),
    .init(fixture: "dns_unreachable", kind: .dnsFailure, fragment: "Temporary failure in name resolution"),
    .init(fixture: "connect_timeout", kind: .connectTimeout, fragment: "Connection timed out during banner exchange"),
    .init(fixture: "banner_closed", kind: .addressBlocked, fragment: "kex_exchange_identification: read: Connection reset by peer"),
    .init(fixture: "key_permissions", kind: .keyPermissions, fragment: "Permissions 0644 for '"),
    .init(fixture: "key_missing", kind: .keyMissing, fragment: "no such identity: "),
    .init(fixture: "key_passphrase", kind: .keyPassphrase, fragment: "root@127.0.0.1: Permission denied (publickey)."),
    .init(fixture: "local_port_in_use", kind: .localPortInUse, fragment: "bind [127.0.0.1]:"),
    .init(fixture: "target_unreachable", kind: .targetUnreachable, fragment: "open failed: connect failed: Connection refused", exit: 0),
    .init(fixture: "forwarding_forbidden", kind: .forwardingForbidden, fragment: "open failed: administratively prohibited", exit: 0),
    .init(fixture: "remote_forward_failed", kind: .remoteForwardFailed, fragment: "Error: remote port forwarding failed for listen port"),
    .init(fixture: "keepalive_timeout", kind: .keepaliveTimeout, fragment: "Timeout, server 127.0.0.1 not responding."),
    .init(fixture: "connection_lost", kind: .connectionLost, fragment: "Connection to 127.0.0.1 closed by remote host."),
    .init(fixture: "bad_config", kind: .unknown, fragment: ": Bad configuration option: tunnelkeepalive"),
    // -L to a live and a dead target, -D, -R; one connection through each but -D (ssh -E, by hand).
    .init(fixture: "connections", kind: .targetUnreachable, fragment: "open failed: connect failed: Connection refused", exit: 0),
    // Against Dropbear (no post-quantum key exchange).
    .init(fixture: "success_dropbear", kind: .connectionLost, fragment: "without stating an error", exit: 0),
    .init(fixture: "connection_lost_dropbear", kind: .connectionLost, fragment: "Connection to 127.0.0.1 closed by remote host."),
]

/// The same situations recorded with the 10.5 client: the same diagnosis.
/// `connections` was recorded by hand with 9.2 only. Where 10.5's words
/// differ, the fragment says so.
let diagnosisCases105: [DiagnosisCase] = diagnosisCases92.filter { $0.fixture != "connections" }.map { c in
    switch c.fixture {
    // The recorder's server closes before the banner: 9.2 saw the reset of
    // the version string it had sent, 10.5 the close.
    case "banner_closed": c.recorded(by: .openSSH105, fragment: "kex_exchange_identification: Connection closed by remote host")
    default: c.recorded(by: .openSSH105)
    }
}

let diagnosisCases = diagnosisCases92 + diagnosisCases105

@Suite("Diagnosis of recorded ssh runs")
struct RecordedDiagnosisTests {
    @Test("every recorded fixture of each client has an expected diagnosis and an exit status", arguments: ClientSet.allCases)
    func everyFixtureIsCovered(_ set: ClientSet) throws {
        let names = try Fixture.allNames(in: set)
        #expect(names.count >= 20)
        #expect(Set(names) == Set(diagnosisCases.filter { $0.set == set }.map(\.fixture)))
        for name in names {
            _ = try Fixture.load(name, from: set)
        }
    }

    @Test("each client recorded the same situations (but the 9.2 client's hand-made connections)")
    func bothClientsRecordedEverySituation() throws {
        #expect(Set(try Fixture.allNames(in: .openSSH92)).subtracting(try Fixture.allNames(in: .openSSH105)) == ["connections"])
        #expect(Set(try Fixture.allNames(in: .openSSH105)).isSubset(of: try Fixture.allNames(in: .openSSH92)))
    }

    @Test(arguments: diagnosisCases)
    func diagnosis(_ c: DiagnosisCase) throws {
        let fixture = try Fixture.load(c.fixture, from: c.set)
        let d = StderrClassifier.diagnose(lines: fixture.lines, exitStatus: fixture.exitStatus)
        #expect(d.kind == c.kind)
        #expect(d.message.contains(c.fragment), "message: \(d.message)")
        if !d.message.contains("without stating an error") {
            // ssh's own words, verbatim.
            #expect(fixture.lines.contains(d.message))
        }
    }

    @Test("the most telling line wins whatever the order of the lines", arguments: diagnosisCases)
    func orderDoesNotMatter(_ c: DiagnosisCase) throws {
        let fixture = try Fixture.load(c.fixture, from: c.set)
        let reversed = StderrClassifier.diagnose(lines: fixture.lines.reversed(), exitStatus: fixture.exitStatus)
        #expect(reversed.kind == c.kind)
    }

    @Test("lines still ending in CR diagnose the same", arguments: diagnosisCases)
    func carriageReturns(_ c: DiagnosisCase) throws {
        let fixture = try Fixture.load(c.fixture, from: c.set)
        let plain = StderrClassifier.diagnose(lines: fixture.lines, exitStatus: fixture.exitStatus)
        let withCR = StderrClassifier.diagnose(lines: fixture.lines.map { $0 + "\r" }, exitStatus: fixture.exitStatus)
        #expect(withCR == plain)
    }

    @Test("recorded exit status: 0 for runs ended by SIGTERM, else 255", arguments: diagnosisCases)
    func recordedExitStatus(_ c: DiagnosisCase) throws {
        #expect(try Fixture.load(c.fixture, from: c.set).exitStatus == c.exit)
    }
}

// MARK: - Line by line, against the recorded lines

enum Expected: Sendable {
    case authenticated, enteredSession, remoteForwardsConfirmed, channelOpenFailed, notice, none
    case failure(FailureKind)

    func event(for line: String) -> SSHEvent? {
        switch self {
        case .authenticated: return .authenticated
        case .enteredSession: return .enteredSession
        case .remoteForwardsConfirmed: return .remoteForwardsConfirmed
        case .channelOpenFailed: return .channelOpenFailed(message: line)
        case .notice: return .notice(line)
        case .none: return nil
        case .failure(let kind): return .failure(kind, message: line)
        }
    }
}

struct LineCase: Sendable, CustomTestStringConvertible {
    let fixture: String
    /// Selects the fixture's line(s) containing it (ports and paths vary per recording).
    let fragment: String
    let expected: Expected
    /// The client that recorded it.
    var set: ClientSet = .openSSH92
    var testDescription: String { "\(set.rawValue)/\(fixture): \(fragment) -> \(expected)" }
}

let lineCases92: [LineCase] = [
    // Readiness.
    .init(fixture: "success", fragment: "Authenticated to 127.0.0.1 ([127.0.0.1]:", expected: .authenticated),
    .init(fixture: "success", fragment: "debug1: Entering interactive session.", expected: .enteredSession),
    .init(fixture: "success", fragment: "debug1: Local forwarding listening on 127.0.0.1 port", expected: .none),
    .init(fixture: "success", fragment: "OpenSSH_9.2p1 Debian", expected: .none),
    .init(fixture: "success", fragment: "Transferred: sent ", expected: .none),
    .init(fixture: "success", fragment: "Bytes per second: sent ", expected: .none),
    .init(fixture: "success", fragment: "debug1: Exit status 0", expected: .none),
    .init(fixture: "success_remote_forward", fragment: "debug1: forwarding_success: all expected forwarding replies received", expected: .remoteForwardsConfirmed),
    .init(fixture: "success_remote_forward", fragment: "debug1: remote forward success for: listen 127.0.0.1:", expected: .none),
    .init(fixture: "success_proxyjump", fragment: "Authenticated to 127.0.0.1 (via proxy) using \"publickey\".", expected: .authenticated),
    .init(fixture: "success_proxyjump", fragment: "Killed by signal 1.", expected: .none),
    .init(fixture: "accept_new_first_use", fragment: "Warning: Permanently added 'warren-demo' (ED25519) to the list of known hosts.", expected: .notice),
    // Authentication and host keys.
    .init(fixture: "auth_failed", fragment: "root@127.0.0.1: Permission denied (publickey).", expected: .failure(.authFailed)),
    .init(fixture: "host_key_unknown", fragment: "No ED25519 host key is known for warren-demo and you have requested strict checking.", expected: .failure(.hostKeyUnknown)),
    .init(fixture: "host_key_unknown", fragment: "Host key verification failed.", expected: .none),
    .init(fixture: "host_key_changed", fragment: "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!", expected: .failure(.hostKeyChanged)),
    .init(fixture: "host_key_changed", fragment: "Host key for warren-demo has changed and you have requested strict checking.", expected: .failure(.hostKeyChanged)),
    .init(fixture: "host_key_changed", fragment: "Host key verification failed.", expected: .none),
    .init(fixture: "host_key_changed", fragment: "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!", expected: .none),
    .init(fixture: "key_permissions", fragment: "WARNING: UNPROTECTED PRIVATE KEY FILE!", expected: .failure(.keyPermissions)),
    .init(fixture: "key_permissions", fragment: "' are too open.", expected: .failure(.keyPermissions)),
    .init(fixture: "key_permissions", fragment: "\": bad permissions", expected: .failure(.keyPermissions)),
    .init(fixture: "key_permissions", fragment: "root@127.0.0.1: Permission denied (publickey).", expected: .failure(.authFailed)),
    .init(fixture: "key_missing", fragment: ": No such file or directory", expected: .failure(.keyMissing)),
    .init(fixture: "key_missing", fragment: "root@127.0.0.1: Permission denied (publickey).", expected: .failure(.authFailed)),
    // Reaching the bastion.
    .init(fixture: "connection_refused", fragment: "ssh: connect to host 127.0.0.1 port", expected: .failure(.connectionRefused)),
    .init(fixture: "connection_refused", fragment: "debug1: connect to address 127.0.0.1 port", expected: .none),
    .init(fixture: "dns_failure", fragment: "ssh: Could not resolve hostname nonexistent.invalid: Name or service not known", expected: .failure(.dnsFailure)),
    .init(fixture: "dns_unreachable", fragment: "ssh: Could not resolve hostname nonexistent.invalid: Temporary failure in name resolution", expected: .failure(.dnsFailure)),
    .init(fixture: "connect_timeout", fragment: "Connection timed out during banner exchange", expected: .failure(.connectTimeout)),
    .init(fixture: "connect_timeout", fragment: "Connection to 127.0.0.1 port ", expected: .failure(.connectTimeout)),
    .init(fixture: "banner_closed", fragment: "kex_exchange_identification: read: Connection reset by peer", expected: .failure(.addressBlocked)),
    .init(fixture: "banner_closed", fragment: "Connection reset by 127.0.0.1 port ", expected: .failure(.connectionLost)),
    .init(fixture: "proxyjump_hop_refused", fragment: "ssh: connect to host 127.0.0.1 port", expected: .failure(.connectionRefused)),
    .init(fixture: "proxyjump_hop_refused", fragment: "kex_exchange_identification: Connection closed by remote host", expected: .failure(.addressBlocked)),
    .init(fixture: "proxyjump_hop_refused", fragment: "Connection closed by UNKNOWN port 65535", expected: .failure(.connectionLost)),
    .init(fixture: "bad_config", fragment: ": Bad configuration option: tunnelkeepalive", expected: .failure(.unknown)),
    .init(fixture: "bad_config", fragment: ": terminating, 1 bad configuration options", expected: .failure(.unknown)),
    // Forwards.
    .init(fixture: "local_port_in_use", fragment: "bind [127.0.0.1]:", expected: .failure(.localPortInUse)),
    .init(fixture: "local_port_in_use", fragment: "channel_setup_fwd_listener_tcpip: cannot listen to port: ", expected: .failure(.localPortInUse)),
    .init(fixture: "local_port_in_use", fragment: "Could not request local forwarding.", expected: .failure(.localPortInUse)),
    .init(fixture: "local_port_in_use", fragment: "debug1: Local forwarding listening on", expected: .none),
    .init(fixture: "target_unreachable", fragment: ": open failed: connect failed: Connection refused", expected: .channelOpenFailed),
    .init(fixture: "forwarding_forbidden", fragment: ": open failed: administratively prohibited: open failed", expected: .failure(.forwardingForbidden)),
    .init(fixture: "remote_forward_failed", fragment: "Error: remote port forwarding failed for listen port ", expected: .failure(.remoteForwardFailed)),
    .init(fixture: "remote_forward_failed", fragment: "debug1: remote forward failure for: listen", expected: .none),
    // An established connection.
    .init(fixture: "keepalive_timeout", fragment: "Timeout, server 127.0.0.1 not responding.", expected: .failure(.keepaliveTimeout)),
    .init(fixture: "connection_lost", fragment: "Connection to 127.0.0.1 closed by remote host.", expected: .failure(.connectionLost)),
    .init(fixture: "connection_lost", fragment: "debug1: Exit status -1", expected: .none),
    // Dropbear as the bastion.
    .init(fixture: "success_dropbear", fragment: "Authenticated to 127.0.0.1 ([127.0.0.1]:", expected: .authenticated),
    .init(fixture: "success_dropbear", fragment: "debug1: Remote protocol version 2.0, remote software version dropbear_2022.83", expected: .none),
    .init(fixture: "connection_lost_dropbear", fragment: "Connection to 127.0.0.1 closed by remote host.", expected: .failure(.connectionLost)),
]

/// The same lines from the 10.5 client, where it says them as 9.2 does, and
/// the lines only 10.5 prints.
let lineCases105: [LineCase] = lineCases92.compactMap { c -> LineCase? in
    switch c.fragment {
    // 10.5 prints its version as a debug line; see the cases below.
    case "OpenSSH_9.2p1 Debian": return nil
    // See banner_closed below: 10.5 saw the close, not the reset.
    case "kex_exchange_identification: read: Connection reset by peer", "Connection reset by 127.0.0.1 port ": return nil
    default: return LineCase(fixture: c.fixture, fragment: c.fragment, expected: c.expected, set: .openSSH105)
    }
} + [
    .init(fixture: "success", fragment: "debug1: OpenSSH_10.5p1, OpenSSL", expected: .none, set: .openSSH105),
    // The words 9.2 says elsewhere (proxyjump_hop_refused; its reset for this
    // close) get the judgement they get there, whatever that becomes.
    .init(fixture: "banner_closed", fragment: "kex_exchange_identification: Connection closed by remote host",
          expected: expected92(for: "kex_exchange_identification: Connection closed by remote host"), set: .openSSH105),
    .init(fixture: "banner_closed", fragment: "Connection closed by 127.0.0.1 port ",
          expected: expected92(for: "Connection reset by 127.0.0.1 port "), set: .openSSH105),
    // ssh 10.1+ to a server without post-quantum key exchange: noise for warren.
    .init(fixture: "success_dropbear", fragment: "** WARNING: connection is not using a post-quantum key exchange algorithm.", expected: .none, set: .openSSH105),
    .init(fixture: "success_dropbear", fragment: "** This session may be vulnerable to \"store now, decrypt later\" attacks.", expected: .none, set: .openSSH105),
    .init(fixture: "success_dropbear", fragment: "** The server may need to be upgraded. See https://openssh.com/pq.html", expected: .none, set: .openSSH105),
]

/// What a 9.2 line case expects of the line it names.
func expected92(for fragment: String) -> Expected {
    guard let c = lineCases92.first(where: { $0.fragment == fragment }) else { preconditionFailure("no 9.2 line case for \(fragment)") }
    return c.expected
}

let lineCases = lineCases92 + lineCases105

@Suite("Classifying recorded lines")
struct RecordedLineTests {
    let classifier = StderrClassifier()

    @Test(arguments: lineCases)
    func recordedLine(_ c: LineCase) throws {
        let fixture = try Fixture.load(c.fixture, from: c.set)
        let matching = fixture.lines.filter { $0.contains(c.fragment) }
        try #require(!matching.isEmpty, "no line of \(c.set.rawValue)/\(c.fixture) contains \(c.fragment)")
        for line in matching {
            #expect(classifier.classify(line: line) == c.expected.event(for: line), "\(line)")
        }
    }

    /// Every line the 10.5 client prints outside debug that no 9.2 fixture
    /// has (numbers, paths and keys aside) is named by a line case, so a new
    /// kind of line cannot slip in unjudged.
    @Test func everyLineOnlyTheNewClientPrintsIsJudged() throws {
        func shapes(_ set: ClientSet) throws -> Set<String> {
            Set(try Fixture.allNames(in: set).flatMap { try Fixture.load($0, from: set).lines }
                .filter { !StderrClassifier.isDebug($0) }.map(Self.shape))
        }
        let new = try shapes(.openSSH105).subtracting(try shapes(.openSSH92))
        let judged = lineCases105.map(\.fragment)
        for shape in new.sorted() {
            #expect(judged.contains { Self.shape($0).isEmpty == false && shape.contains(Self.shape($0)) }, "unjudged 10.5 line: \(shape)")
        }
    }

    /// A line with its numbers, temporary paths and base64 folded away.
    static func shape(_ line: String) -> String {
        line.replacing(/\/tmp\/warren-rec\.[A-Za-z0-9]+/, with: "T")
            .replacing(/SHA256:[A-Za-z0-9+\/]+/, with: "FP")
            .replacing(/[0-9]+(\.[0-9]+)?/, with: "N")
    }

    /// Debug lines never state a failure or a notice: only the readiness lines
    /// and the bookkeeping of connections through the forwards are events.
    @Test(arguments: try Fixture.everyRecording())
    func debugLinesAreChatter(_ recording: RecordedName) throws {
        let fixture = try Fixture.load(recording.name, from: recording.set)
        let events: [String: SSHEvent] = [
            "debug1: Entering interactive session.": .enteredSession,
            "debug1: forwarding_success: all expected forwarding replies received": .remoteForwardsConfirmed,
        ]
        let debugLines = fixture.lines.filter { $0.hasPrefix("debug1:") || $0.hasPrefix("debug2:") || $0.hasPrefix("debug3:") }
        #expect(!debugLines.isEmpty)
        for line in debugLines {
            #expect(StderrClassifier.isDebug(line))
            let event = classifier.classify(line: line)
            switch event {
            case .forwardRequested?: #expect(line.hasPrefix("debug1: Connection to port "), "\(line)")
            case .remoteForwardRequested?: #expect(line.hasPrefix("debug1: client_request_forwarded_tcpip: "), "\(line)")
            case .channelOpened?: #expect(line.contains("-tcpip ["), "\(line)")
            case .channelClosed?: #expect(line.contains(": free: ") && !line.contains("port listener"), "\(line)")
            default: #expect(event == events[line], "\(line)")
            }
        }
        for line in fixture.lines where !debugLines.contains(line) {
            #expect(!StderrClassifier.isDebug(line), "\(line)")
        }
    }

    @Test("a trailing CR changes nothing", arguments: try Fixture.everyRecording())
    func trailingCarriageReturn(_ recording: RecordedName) throws {
        let fixture = try Fixture.load(recording.name, from: recording.set)
        for line in fixture.lines {
            #expect(classifier.classify(line: line + "\r") == classifier.classify(line: line), "\(line)")
        }
    }
}

// MARK: - Event sequences of whole runs

struct SuccessCase: Sendable, CustomTestStringConvertible {
    let fixture: String
    let enteredSessions: Int
    let authentications: Int
    let remoteForwardsConfirmed: Bool
    var set: ClientSet = .openSSH92
    var testDescription: String { "\(set.rawValue)/\(fixture)" }
}

let successCases92 = [
    SuccessCase(fixture: "success", enteredSessions: 1, authentications: 1, remoteForwardsConfirmed: false),
    SuccessCase(fixture: "success_remote_forward", enteredSessions: 1, authentications: 1, remoteForwardsConfirmed: true),
    // The jump hop's ssh -W shares stderr: it enters its session first.
    SuccessCase(fixture: "success_proxyjump", enteredSessions: 2, authentications: 2, remoteForwardsConfirmed: false),
    SuccessCase(fixture: "accept_new_first_use", enteredSessions: 1, authentications: 1, remoteForwardsConfirmed: false),
    SuccessCase(fixture: "success_dropbear", enteredSessions: 1, authentications: 1, remoteForwardsConfirmed: false),
]
let successCases = successCases92 + successCases92.map {
    SuccessCase(fixture: $0.fixture, enteredSessions: $0.enteredSessions, authentications: $0.authentications,
                remoteForwardsConfirmed: $0.remoteForwardsConfirmed, set: .openSSH105)
}

@Suite("Event sequences of recorded runs")
struct RecordedSequenceTests {
    @Test(arguments: successCases)
    func successfulRun(_ c: SuccessCase) throws {
        let events = try Fixture.load(c.fixture, from: c.set).events()
        #expect(events.filter { $0 == .enteredSession }.count == c.enteredSessions)
        #expect(events.filter { $0 == .authenticated }.count == c.authentications)
        #expect(events.contains(.remoteForwardsConfirmed) == c.remoteForwardsConfirmed)
        #expect(!events.contains { $0.isFailure || $0.isChannelOpenFailed })
        // Authenticated comes before the session is entered.
        let firstAuth = try #require(events.firstIndex(of: .authenticated))
        let lastSession = try #require(events.lastIndex(of: .enteredSession))
        #expect(firstAuth < lastSession)
        if c.remoteForwardsConfirmed {
            #expect(events.lastIndex(of: .remoteForwardsConfirmed)! > lastSession)
        }
    }

    @Test("accept-new pins the key on first use and says so", arguments: ClientSet.allCases)
    func acceptNewNotice(_ set: ClientSet) throws {
        let events = try Fixture.load("accept_new_first_use", from: set).events()
        let notices = events.compactMap { if case .notice(let s) = $0 { return s }; return nil }
        #expect(notices.count == 1)
        #expect(notices.first?.hasPrefix("Warning: Permanently added 'warren-demo'") == true)
    }

    @Test("a remote forward refused after the session was entered: enteredSession is not readiness for -R", arguments: ClientSet.allCases)
    func remoteForwardFailureFollowsSession(_ set: ClientSet) throws {
        let events = try Fixture.load("remote_forward_failed", from: set).events()
        let session = try #require(events.firstIndex(of: .enteredSession))
        let failure = try #require(events.firstIndex {
            if case .failure(.remoteForwardFailed, _) = $0 { return true }; return false
        })
        #expect(session < failure)
        #expect(!events.contains(.remoteForwardsConfirmed))
    }

    @Test("a local port in use: `Local forwarding listening` is printed, the session is never entered", arguments: ClientSet.allCases)
    func localPortInUseNeverEntersSession(_ set: ClientSet) throws {
        let fixture = try Fixture.load("local_port_in_use", from: set)
        #expect(fixture.lines.contains { $0.hasPrefix("debug1: Local forwarding listening on") })
        let events = fixture.events()
        #expect(events.contains(.authenticated))
        #expect(!events.contains(.enteredSession))
    }

    @Test("a dead target: the tunnel is up, one channel fails, no failure", arguments: ClientSet.allCases)
    func deadTarget(_ set: ClientSet) throws {
        let events = try Fixture.load("target_unreachable", from: set).events()
        let session = try #require(events.firstIndex(of: .enteredSession))
        let channel = try #require(events.firstIndex { $0.isChannelOpenFailed })
        #expect(session < channel)
        #expect(!events.contains { $0.isFailure })
    }

    @Test("forbidden forwarding is a failure, not a dead target", arguments: ClientSet.allCases)
    func forbiddenForwarding(_ set: ClientSet) throws {
        let events = try Fixture.load("forwarding_forbidden", from: set).events()
        #expect(!events.contains { $0.isChannelOpenFailed })
        #expect(events.contains { if case .failure(.forwardingForbidden, _) = $0 { return true }; return false })
    }

    @Test("a key-file problem is stated before the Permission denied it causes", arguments: ClientSet.allCases, [
        ("key_missing", FailureKind.keyMissing), ("key_permissions", FailureKind.keyPermissions),
    ])
    func keyFileBeforeAuth(_ set: ClientSet, _ file: (name: String, kind: FailureKind)) throws {
        let (name, kind) = file
        let kinds = try Fixture.load(name, from: set).events().compactMap { e -> FailureKind? in
            if case .failure(let k, _) = e { return k }; return nil
        }
        #expect(kinds.first == kind)
        #expect(kinds.last == .authFailed)
    }
}

// MARK: - Lines that cannot be produced on loopback

struct QuotedCase: Sendable, CustomTestStringConvertible {
    let line: String
    let expected: Expected
    var testDescription: String { line }
}

/// Lines quoted from OPENSSH-NOTES.md and the OpenSSH sources for situations a
/// loopback sshd cannot produce (black holes, unreachable networks, broken pipes).
let quotedCases: [QuotedCase] = [
    .init(line: "ssh: connect to host 192.0.2.10 port 22: Connection timed out", expected: .failure(.connectTimeout)),
    .init(line: "ssh: connect to host 192.0.2.10 port 22: Network is unreachable", expected: .failure(.connectTimeout)),
    .init(line: "ssh: connect to host 192.0.2.10 port 22: No route to host", expected: .failure(.connectTimeout)),
    .init(line: "client_loop: send disconnect: Broken pipe", expected: .failure(.connectionLost)),
    .init(line: "Connection reset by 192.0.2.10 port 22", expected: .failure(.connectionLost)),
    .init(line: "Warning: remote port forwarding failed for listen port 8080", expected: .failure(.remoteForwardFailed)),
    .init(line: "Failed to add the host to the list of known hosts (/var/lib/warren/tunnels/db/known_hosts).", expected: .notice),
    .init(line: "channel 3: open failed: connect failed: Name or service not known", expected: .channelOpenFailed),
    // A target that times out is a dead target, not a bastion timeout.
    .init(line: "channel 12: open failed: connect failed: Connection timed out", expected: .channelOpenFailed),
    .init(line: "channel 7: open failed: administratively prohibited: open failed", expected: .failure(.forwardingForbidden)),
    .init(line: "tunnel@bastion.example.com: Permission denied (publickey,password).", expected: .failure(.authFailed)),
    .init(line: "debug1: Authentication succeeded (publickey).", expected: .authenticated),
    // ssh's debug chatter repeats failures before stating them: never a failure.
    .init(line: "debug1: connect to address 192.0.2.10 port 22: Connection timed out", expected: .none),
    .init(line: "debug1: connect to address 192.0.2.10 port 22: Network is unreachable", expected: .none),
    .init(line: "debug2: channel 0: open confirm rwindow 2097152 rmax 32768", expected: .none),
    .init(line: "debug3: receive packet: type 80", expected: .none),
    .init(line: "", expected: .none),
]

@Suite("Classifying quoted lines and diagnosing synthetic runs")
struct QuotedLineTests {
    @Test(arguments: quotedCases)
    func quotedLine(_ c: QuotedCase) {
        #expect(StderrClassifier().classify(line: c.line) == c.expected.event(for: c.line))
        #expect(StderrClassifier().classify(line: c.line + "\r") == c.expected.event(for: c.line))
    }

    @Test(arguments: [
        ("debug1: x", true), ("debug2: x", true), ("debug3: x", true),
        ("debug4: x", false), ("Authenticated to h ([1.2.3.4]:22) using \"publickey\".", false),
        (" debug1: x", false), ("", false),
    ])
    func isDebug(_ line: String, _ expected: Bool) {
        #expect(StderrClassifier.isDebug(line) == expected)
    }

    @Test func nothingSaid() {
        let d = StderrClassifier.diagnose(lines: [], exitStatus: 255)
        #expect(d == ExitDiagnosis(kind: .connectionLost, message: "ssh exited with status 255 without stating an error"))
        let killed = StderrClassifier.diagnose(lines: ["debug1: pledge: network"], exitStatus: nil)
        #expect(killed == ExitDiagnosis(kind: .connectionLost, message: "ssh ended without stating an error"))
    }

    @Test func unrecognisedLineIsUnknown() {
        let lines = [
            "OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 27 Jan 2026",
            "ssh: something new went wrong",
            "something else new",
            "Transferred: sent 3360, received 3168 bytes, in 0.3 seconds",
            "debug1: Exit status 255",
        ]
        let d = StderrClassifier.diagnose(lines: lines, exitStatus: 255)
        #expect(d == ExitDiagnosis(kind: .unknown, message: "something else new"))
    }

    @Test("the generic host key line alone means no usable pinned key")
    func genericHostKeyLine() {
        let alone = StderrClassifier.diagnose(lines: ["Host key verification failed."], exitStatus: 255)
        #expect(alone == ExitDiagnosis(kind: .hostKeyUnknown, message: "Host key verification failed."))
        let changed = "Host key for bastion.example.com has changed and you have requested strict checking."
        for lines in [["Host key verification failed.", changed], [changed, "Host key verification failed."]] {
            #expect(StderrClassifier.diagnose(lines: lines, exitStatus: 255)
                == ExitDiagnosis(kind: .hostKeyChanged, message: changed))
        }
    }

    @Test("a failure that ends ssh outranks an earlier failed channel open")
    func terminalOverChannel() {
        let lines = [
            "channel 1: open failed: connect failed: Connection refused",
            "channel 2: open failed: administratively prohibited: open failed",
            "Timeout, server 10.0.0.5 not responding.",
        ]
        #expect(StderrClassifier.diagnose(lines: lines, exitStatus: 255)
            == ExitDiagnosis(kind: .keepaliveTimeout, message: "Timeout, server 10.0.0.5 not responding."))
        #expect(StderrClassifier.diagnose(lines: Array(lines.prefix(2)), exitStatus: 0).kind == .forwardingForbidden)
        #expect(StderrClassifier.diagnose(lines: Array(lines.prefix(1)), exitStatus: 0).kind == .targetUnreachable)
    }
}

/// A ProxyJump hop that cannot reach the bastion says so with a failed channel
/// open of its own `ssh -W`; that is the bastion's failure, not a target's.
@Suite struct JumpHopDiagnosisTests {
    func lines(_ name: String) throws -> [String] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "txt", subdirectory: "Fixtures/bastion"))
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test func hopThatCannotReachTheBastionIsConnectionRefused() throws {
        let diagnosis = StderrClassifier.diagnose(lines: try lines("w_proxyjump_hop_refused"), exitStatus: 255, jumpHops: 1)
        #expect(diagnosis.kind == .connectionRefused)
        #expect(diagnosis.message.hasPrefix("a jump hop could not reach the next host: channel 0: open failed: connect failed: Connection refused"))
        // Without knowing about the hop, the same lines blame the target.
        #expect(StderrClassifier.diagnose(lines: try lines("w_proxyjump_hop_refused"), exitStatus: 255).kind == .targetUnreachable)
    }

    @Test func aTargetBehindTheLastHopIsStillTheTarget() throws {
        let diagnosis = StderrClassifier.diagnose(lines: try lines("w_proxyjump_target_refused"), exitStatus: 255, jumpHops: 1)
        #expect(diagnosis.kind == .targetUnreachable)
    }

    @Test(arguments: [
        ("channel 0: open failed: connect failed: Name or service not known", FailureKind.dnsFailure),
        ("channel 0: open failed: connect failed: Connection timed out", .connectTimeout),
        ("channel 0: open failed: connect failed: No route to host", .connectTimeout),
        ("channel 0: open failed: administratively prohibited: open failed", .forwardingForbidden),
        ("channel 0: open failed: connect failed: Connection refused", .connectionRefused),
    ])
    func hopFailureReasons(_ line: String, _ kind: FailureKind) {
        #expect(StderrClassifier.hopFailureKind(line) == kind)
    }
}

/// Lines in which ssh quotes the server: only ssh's own part is judged.
@Suite("Server words quoted by ssh")
struct QuotedServerTextTests {
    /// A disconnect message is the server's text: whatever it imitates, the
    /// connection was lost, and no kind that waits for a human follows.
    @Test(arguments: [
        "Received disconnect from 127.0.0.1 port 22:2: WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!",
        "Received disconnect from 127.0.0.1 port 22:11: Permission denied (publickey).",
        "Disconnected from 127.0.0.1 port 22: Could not resolve hostname db: Name or service not known",
    ])
    func aDisconnectMessageIsAConnectionLost(_ line: String) {
        #expect(StderrClassifier().classify(line: line) == .failure(.connectionLost, message: line))
        #expect(StderrClassifier.diagnose(lines: [line], exitStatus: 255).kind == .connectionLost)
    }

    /// `channel N: open failed: REASON: DESCRIPTION`: only the reason (ssh's
    /// text for the protocol's code) makes a forward forbidden.
    @Test func aDescriptionSayingProhibitedIsNotAForbiddenForward() {
        let crafted = "channel 1: open failed: connect failed: administratively prohibited"
        #expect(StderrClassifier().classify(line: crafted) == .channelOpenFailed(message: crafted))
        #expect(StderrClassifier.diagnose(lines: [crafted], exitStatus: 255).kind == .targetUnreachable)
        #expect(StderrClassifier.hopFailureKind(crafted) != .forwardingForbidden)
        let real = "channel 1: open failed: administratively prohibited: open failed"
        #expect(StderrClassifier().classify(line: real) == .failure(.forwardingForbidden, message: real))
        #expect(StderrClassifier.hopFailureKind(real) == .forwardingForbidden)
    }
}
