extension SSHDServer {
    /// The known_hosts line that pins this server: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`.
    public var knownHostsLine: String { "[127.0.0.1]:\(port) \(hostKeyLine)" }

    /// Writes `ssh_config` and `known_hosts` for a client of this server into
    /// `directory` and returns the config's path, for `ssh -F PATH ALIAS`.
    ///
    /// The host entry is strict: BatchMode, the client key only, this server's
    /// key pinned, /etc/ssh/ssh_known_hosts ignored, ExitOnForwardFailure.
    /// `extraLines` come first inside the Host block, so (first value wins)
    /// they override these.
    @discardableResult
    public func writeClientConfig(
        in directory: TemporaryDirectory,
        alias: String = "bastion",
        logLevel: String = "INFO",
        extraLines: [String] = []
    ) throws -> String {
        let knownHosts = try directory.write(knownHostsLine + "\n", to: "known_hosts")
        let lines = extraLines + [
            "HostName 127.0.0.1",
            "Port \(port)",
            "User \(user)",
            "IdentityFile \(clientKeyPath)",
            "IdentitiesOnly yes",
            "BatchMode yes",
            "UserKnownHostsFile \(knownHosts)",
            "GlobalKnownHostsFile /dev/null",
            "StrictHostKeyChecking yes",
            "ExitOnForwardFailure yes",
            "ConnectTimeout 5",
            "LogLevel \(logLevel)",
        ]
        let text = "Host \(alias)\n" + lines.map { "    \($0)\n" }.joined()
        return try directory.write(text, to: "ssh_config")
    }
}
