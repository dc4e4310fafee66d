import ArgumentParser
import Foundation
import WarrenCore
import WarrenRuntime

extension Warren {
    /// What a tunnel's askpass helper runs at each login (see `AskpassScript`):
    /// prints a password or passphrase file, opened and checked as `validate`
    /// checks it, or refuses with the reason on stderr (ssh logs it).
    struct AskpassSecret: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: AskpassScript.subcommand,
            abstract: "Print a secret file for ssh's askpass (used by the generated helper).",
            shouldDisplay: false)

        @Argument var path: String

        func run() throws {
            let bytes: [UInt8]
            do { bytes = try TrustedFile.read(path, limit: TrustedFile.secretLimit, secret: true) } catch {
                throw CommandFailure("warren askpass: \(TerminalText.escape(error.description))", exit: 1)
            }
            FileHandle.standardOutput.write(Data(bytes))
        }
    }
}
