import ArgumentParser
import Foundation
import WarrenCore
import WarrenRuntime

extension Warren {
    struct Doctor: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Walk the troubleshooting checklist for a tunnel: which step fails, and what to do.",
            discussion: """
                Numbered steps, each ✓ or ✗ with what was seen and, on ✗, the fix:
                   1. config is valid             6. host key matches the pin
                   2. key file present, 0600      7. authentication, every hop
                   3. host name resolves          8. targets reachable (ssh -W)
                   4. TCP within connect_timeout  9. local ports free
                   5. SSH banner                 10. end to end (temporary ssh -N)
                A step whose result would mean nothing after an earlier failure is not run \
                (a TCP check when the name does not resolve); independent steps still run. \
                It ends with the plain `ssh -L ...` command for the tunnel, to reproduce it by hand.

                It writes the tunnel's generated files (as `warren render` does) and starts short \
                ssh processes of its own, which it stops. If `warren run` is up for this tunnel, \
                step 10 probes that tunnel instead of starting another. \
                Exits 0 when every step passes, 1 when a step fails.
                """)

        @OptionGroup var options: GlobalOptions

        @Argument(help: "The tunnel's name, as in [tunnels.NAME].")
        var tunnel: String

        @Flag(help: "Print the result as JSON (steps with status, evidence, fix and failure kind) at the end.")
        var json = false

        func run() async throws {
            let doctor = WarrenRuntime.Doctor(options: .init(
                configPath: options.config, stateDirOverride: options.stateDir,
                templatesDirectory: options.templates, tunnel: tunnel))
            if !json {
                printText("warren doctor \(TerminalText.escape(tunnel))\n\n")
                fflush(nil)
            }
            let report = await doctor.run { step in
                guard !json else { return }
                printText(DoctorText.step(step))
                fflush(nil)
            }
            if json {
                print(JSONOutput.encode(report), terminator: "")
            } else {
                printText(DoctorText.summary(report))
            }
            if !report.ok { throw ExitCode(1) }
        }
    }
}
