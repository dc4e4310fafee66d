import Foundation
import Testing
import WarrenCore

/// The one-shot ssh of `warren check` without a supervisor, read from real
/// runs recorded by `Fixtures/record-bastion.sh`.
struct BastionProbeReaderTests {
    struct Case: Sendable, CustomStringConvertible {
        var fixture: String
        var shape: BastionProbeReader.Shape
        var hops: Int
        var expected: BastionAnswer
        var description: String { fixture }
    }

    static let cases: [Case] = [
        Case(fixture: "w_reachable", shape: .stdioForward, hops: 0, expected: .reachable),
        Case(fixture: "w_target_refused", shape: .stdioForward, hops: 0,
             expected: .targetFailed(.targetUnreachable, "channel 0: open failed: connect failed: Connection refused")),
        Case(fixture: "w_auth_failed", shape: .stdioForward, hops: 0,
             expected: .failed(.authFailed, "root@127.0.0.1: Permission denied (publickey).")),
        Case(fixture: "w_proxyjump_reachable", shape: .stdioForward, hops: 1, expected: .reachable),
        Case(fixture: "w_proxyjump_target_refused", shape: .stdioForward, hops: 1,
             expected: .targetFailed(.targetUnreachable, "channel 0: open failed: connect failed: Connection refused")),
        // The hop could not reach the bastion's port: that is the bastion
        // refusing connections, not a target that does not answer.
        Case(fixture: "w_proxyjump_hop_refused", shape: .stdioForward, hops: 1,
             expected: .failed(.connectionRefused, "a jump hop could not reach the next host: channel 0: open failed: connect failed: Connection refused")),
        Case(fixture: "session_ok", shape: .session, hops: 0, expected: .reachable),
    ]

    static func load(_ name: String) throws -> (lines: [String], status: Int32) {
        func url(_ ext: String) throws -> URL {
            try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures/bastion"), "fixture bastion/\(name).\(ext) missing")
        }
        var lines = try String(contentsOf: url("txt"), encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        let status = try #require(Int32(try String(contentsOf: url("exit"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        return (lines, status)
    }

    @Test(arguments: cases)
    func answerOfARecordedRun(_ c: Case) throws {
        let (lines, status) = try Self.load(c.fixture)
        var reader = BastionProbeReader(shape: c.shape, hops: c.hops)
        var yesAt: Int?
        for (index, line) in lines.enumerated() where reader.read(line + "\r") && yesAt == nil {
            yesAt = index
        }
        #expect(reader.answer(exitStatus: status) == c.expected)
        if c.expected == .reachable {
            // The yes comes while ssh still runs, so warren can stop it there.
            let at = try #require(yesAt, "never answered yes")
            #expect(at < lines.count - 1)
        } else {
            #expect(yesAt == nil)
        }
    }

    @Test func aConfirmationBeforeTheBastionsOwnLoginIsNotItsYes() throws {
        let (lines, _) = try Self.load("w_proxyjump_reachable")
        var reader = BastionProbeReader(shape: .stdioForward, hops: 1)
        let bastionLogin = try #require(lines.firstIndex { $0.hasPrefix("Authenticated to ") && $0.contains("(via proxy)") })
        for line in lines[..<bastionLogin] { reader.read(line) }
        // A hop that logs at -vv (someone reproducing the tunnel by hand) confirms its own -W channel.
        reader.read("debug2: channel 0: open confirm rwindow 2097152 rmax 32768")
        #expect(!reader.answeredYes, "the hop's channel is not the target's")
        for line in lines[bastionLogin...] { reader.read(line) }
        #expect(reader.answeredYes, "the outer ssh's confirmation after the bastion's login is")
    }

    @Test(arguments: [
        ("channel 0: open failed: connect failed: Connection refused", FailureKind.connectionRefused),
        ("channel 0: open failed: connect failed: Name or service not known", .dnsFailure),
        ("channel 0: open failed: connect failed: Temporary failure in name resolution", .dnsFailure),
        ("channel 0: open failed: connect failed: Connection timed out", .connectTimeout),
        ("channel 0: open failed: connect failed: No route to host", .connectTimeout),
        ("channel 0: open failed: administratively prohibited: open failed", .forwardingForbidden),
        ("channel 0: open failed: unknown channel type: x", .connectionLost),
    ])
    func hopChannelFailuresNameTheBastionsProblem(_ line: String, _ kind: FailureKind) {
        var reader = BastionProbeReader(shape: .stdioForward, hops: 1)
        reader.read("Authenticated to jump.example ([192.0.2.1]:22) using \"publickey\".")
        reader.read(line)
        reader.read("stdio forwarding failed")
        reader.read("kex_exchange_identification: Connection closed by remote host")
        #expect(reader.answer(exitStatus: 255) == .failed(kind, "a jump hop could not reach the next host: \(line)"))
    }

    @Test func aTargetThatClosesAtOnceStillCountsAsReached() {
        // ssh -W exits 0 only after the channel was open; the confirmation may
        // not have been read before the target closed it.
        var reader = BastionProbeReader(shape: .stdioForward, hops: 0)
        reader.read("Authenticated to 127.0.0.1 ([127.0.0.1]:22) using \"publickey\".")
        #expect(reader.answer(exitStatus: 0) == .reachable)
    }
}
