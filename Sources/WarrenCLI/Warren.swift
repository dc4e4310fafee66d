import ArgumentParser

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
            Start with `warren validate`, then `warren render NAME` to see what ssh is told.
            """,
        subcommands: [Run.self, Status.self, Check.self, Validate.self, Render.self, Keygen.self, AuthorizedKey.self, Hostkey.self, Doctor.self]
    )
    public init() {}
}
