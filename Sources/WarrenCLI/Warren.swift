import ArgumentParser
import Foundation

/// The `warren` command: a tunnel supervisor over the system OpenSSH client.
public struct Warren: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "warren",
        abstract: "Keep SSH tunnels to private databases up, and say what is wrong when they are not.",
        discussion: """
            warren reads a TOML config that lists tunnels (a bastion host and the ports to \
            forward through it), runs the system `ssh` for each as a supervised child, restarts \
            it with backoff, and names every failure with its fix.

            Config: --config FILE, else $WARREN_CONFIG, else ./warren.toml, else /etc/warren/warren.toml.
            New tunnel: `warren keygen`, then `warren hostkey NAME` (pin the bastion's key), \
            `warren authorized-key NAME` (the line for the bastion's admin; `warren bastion-config NAME` for every jump hop and sshd_config), `warren validate`, \
            and `warren doctor NAME` to check every step. Then `warren run`, or `warren check` from cron.
            """,
        subcommands: [Run.self, Status.self, Retry.self, Check.self, Validate.self, Render.self, Where.self, Keygen.self, Rotate.self, AuthorizedKey.self, BastionConfigCommand.self, Hostkey.self, Doctor.self, AskpassSecret.self]
    )
    public init() {}
}

extension Warren {
    /// The entry point: parses, runs, and exits with the command's status.
    /// `check` is a monitoring plugin, whose callers read any exit status
    /// outside 0-3 as a broken plugin: its usage errors exit 3 (UNKNOWN).
    public static func runAsMain(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) async -> Never {
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            exit(withError: nil)
        } catch {
            // A command's own failure is printed here, once, with its fix.
            let failure = error as? CommandFailure
            let code = failure.map { ExitCode($0.code) } ?? exitCode(for: error)
            if arguments.first == "check", !(0...3).contains(code.rawValue) {
                if let failure { _ = failure.report() } else { FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8)) }
                Foundation.exit(3)
            }
            if let failure { exit(withError: failure.report()) }
            exit(withError: error)
        }
    }
}
