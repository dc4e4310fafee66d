import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// Finding 6 of the security review: what a local user or a server chooses
/// cannot reach the operator's terminal raw.
@Suite(.serialized) struct TerminalEscapeTests {
    /// Clears the screen, goes home, and prints a fake verdict, with a bidi
    /// override and a C1 CSI for good measure.
    static let payload = "\u{1b}[2J\u{1b}[H\nAll steps passed.\u{202e}\u{9b}31m"

    /// A local process holding the tunnel's port with the payload in its command line.
    @Test func doctorEscapesThePortHoldersCommandLine() async throws {
        try await withLab(.bastion()) { b in
            let squatter = try b.spawn(
                "/usr/bin/python3",
                ["-c", "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', \(b.localPort))); s.listen(); time.sleep(120)", Self.payload],
                log: "squatter.log")
            defer { _ = squatter.terminate() }
            #expect(FreePort.waitUntilListening(b.localPort, timeout: .seconds(20)))
            for arguments in [["doctor", "db"], ["doctor", "db", "--json"]] {
                let result = try await b.warren(arguments)
                #expect(result.status == 1, "\(result)")
                #expect(!result.stdout.unicodeScalars.contains { TerminalText.needsEscape($0, keepingLines: true) }, "nothing raw: \(result.stdout.debugDescription)")
                #expect(!result.stdout.contains("\nAll steps passed."), "no line of the holder's making")
                if arguments.count == 2 {
                    #expect(result.stdout.contains("\\u{1b}[2J\\u{1b}[H\\u{a}All steps passed.\\u{202e}\\u{9b}31m"), "\(result.stdout)")
                } else {
                    let report = try JSONDecoder().decode(DoctorReport.self, from: Data(result.stdout.utf8))
                    #expect(report.step(9)?.evidence.joined().contains("\\u{1b}[2J") == true, "JSON stays JSON: \(result.stdout)")
                }
            }
        }
    }
}

/// What ssh or a server said reaches status.json as it was said; `warren
/// status` prints it escaped, and its JSON stays the same JSON.
@Suite struct StatusEscapeTests {
    @Test func statusPrintsAHostileMessageEscaped() async throws {
        let dir = try TemporaryDirectory(prefix: "sec-st-")
        defer { dir.remove() }
        let hostile = "Connection closed\u{1b}]0;owned\u{7}\u{9b}2J\u{202e}\r\nAll tunnels up"
        var tunnel = TunnelStatus(
            name: "db", state: .backoff, since: "2026-11-30T00:00:00Z", pid: nil, restarts: 1,
            forwards: ["L 127.0.0.1:1:x:2"], lastError: TunnelError(kind: .connectionLost, message: hostile), nextRetry: nil)
        tunnel.hostKeyChecked = true
        let report = StatusReport(
            supervisorPid: 1, configFile: "/x", startedAt: "2026-11-30T00:00:00Z", updatedAt: "2026-11-30T00:00:00Z",
            running: true, tunnels: [tunnel])
        try JSONEncoder().encode(report).write(to: URL(fileURLWithPath: dir.appending("status.json")))
        let text = try await CommandRunner.warren(["status", "--state-dir", dir.path])
        #expect(!text.stdout.unicodeScalars.contains { TerminalText.needsEscape($0, keepingLines: true) }, "\(text.stdout.debugDescription)")
        #expect(text.stdout.contains("Connection closed\\u{1b}]0;owned\\u{7}\\u{9b}2J\\u{202e}\\u{d}\\u{a}All tunnels up"), "\(text)")
        #expect(!text.stdout.contains("\nAll tunnels up"), "no line of the server's making")
        let json = try await CommandRunner.warren(["status", "--json", "--state-dir", dir.path])
        #expect(!json.stdout.unicodeScalars.contains { TerminalText.needsEscape($0, keepingLines: true) }, "\(json.stdout.debugDescription)")
        let decoded = try JSONDecoder().decode(StatusReport.self, from: Data(json.stdout.utf8))
        #expect(decoded.tunnels.first?.lastError?.message == hostile, "the same JSON value")
    }
}
