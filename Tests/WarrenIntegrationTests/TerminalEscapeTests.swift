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
        try await withBastion { b in
            let squatter = try SpawnedProcess.spawn(
                "/usr/bin/python3",
                ["-c", "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', \(b.localPort))); s.listen(); time.sleep(120)", Self.payload],
                log: b.workspace.dir.appending("squatter.log"))
            defer { _ = squatter.terminate() }
            #expect(FreePort.waitUntilListening(b.localPort, timeout: .seconds(20)))
            for arguments in [["doctor", "db"], ["doctor", "db", "--json"]] {
                let result = try await b.workspace.warren(arguments)
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
