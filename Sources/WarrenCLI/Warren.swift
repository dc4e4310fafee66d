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
            New tunnel: `warren keygen`, then `warren hostkey NAME` (pin the bastion's key), \
            `warren authorized-key NAME` (the line for the bastion's admin), `warren validate`, \
            and `warren doctor NAME` to check every step. Then `warren run`, or `warren check` from cron.
            """,
        subcommands: [Run.self, Status.self, Check.self, Validate.self, Render.self, Keygen.self, AuthorizedKey.self, Hostkey.self, Doctor.self]
    )
    public init() {}
}
