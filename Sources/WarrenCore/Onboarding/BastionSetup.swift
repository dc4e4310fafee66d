/// What `warren authorized-key TUNNEL` prints: the line, then the steps for the
/// bastion's admin, then what to allowlist. Pure text from values.
public enum BastionSetup {
    /// - Parameters:
    ///   - user: the login user on the bastion (the config's `user`, else the local user ssh would send).
    ///   - userFromConfig: whether `user` came from the config (else the text says where it came from).
    ///   - line: the rendered authorized_keys line.
    public static func instructions(
        tunnel: TunnelConfig, user: String, userFromConfig: Bool, line: String, policy: AuthorizedKeyPolicy
    ) -> String {
        let bastion = tunnel.endpoint
        let home = "~\(user)"
        var out = "# Tunnel \(tunnel.name): the line for the authorized_keys of user \(user) on \(bastion.host) (port \(bastion.port))"
        if !userFromConfig { out += "\n# (the config sets no `user`, so ssh logs in as \(user), the user running warren)" }
        out += "\n\n\(line)\n\n"
        out += "It lets this key open the tunnel's forwards and nothing else: no shell or command\n"
        out += "(any session runs /bin/false), no agent or X11 forwarding, no other host:port.\n"
        if policy.from == nil {
            out += "Set `allowed_from` in the config to your public address(es) to add from=\"...\", so the key works from nowhere else.\n"
        }
        for note in policy.notes { out += "Note: \(note).\n" }

        // root always exists: never offer to create it, and say what logging in as root takes.
        let isRoot = user == "root"
        if isRoot {
            out += "\nThe tunnel logs in as root"
            out += userFromConfig ? "" : " (the config sets no `user`, and warren runs as root)"
            out += ". The line above allows only forwards, but a dedicated user is safer: set\n"
            out += "`user = \"tunnel\"` in tunnels.\(tunnel.name) (or [defaults]) and run `warren authorized-key \(tunnel.name)` again.\n"
            out += "To keep root: sshd_config's PermitRootLogin must be prohibit-password (the default) or yes.\n"
        }
        out += "\nOn \(bastion.host), as root:\n"
        let account = isRoot ? [] : [("the user", "id \(user) || useradd --create-home --shell /usr/sbin/nologin \(user)")]
        let steps = account + [
            ("its ~/.ssh, 0700", "mkdir -p \(home)/.ssh && chmod 700 \(home)/.ssh"),
            ("append the line", "echo '\(line)' >> \(home)/.ssh/authorized_keys"),
            ("authorized_keys 0600", "chmod 600 \(home)/.ssh/authorized_keys   (0644 works too; group- or world-writable is refused)"),
            ("owned by the user", "chown -R \(user): \(home)/.ssh"),
        ]
        for (i, step) in steps.enumerated() {
            out += "  \(i + 1). \(step.0.padding(21)) \(step.1)\n"
        }
        out += "sshd refuses the key, with only `Permission denied (publickey)` on this side, when the home\n"
        out += "directory, ~/.ssh or authorized_keys is writable by group or others (StrictModes), or not owned\n"
        out += "by \(user). sshd_config must allow forwarding for \(user): AllowTcpForwarding yes (the default)"
        out += tunnel.remoteForwards.isEmpty ? ".\n" : " or remote.\n"

        out += "\nAllowlist:\n"
        out += "  - TCP to \(bastion.host) port \(bastion.port) from this machine's public address, on the bastion's firewall or security group"
        out += tunnel.jumps.isEmpty ? ".\n" : " (through the jump hops: \(tunnel.jumps.map { "\($0.host):\($0.port)" }.joined(separator: ", "))).\n"
        let targets = tunnel.localForwards.compactMap { forward -> String? in
            if case .tcp? = forward.target { return forward.target!.description }
            return nil
        }
        for target in orderedUnique(targets) {
            out += "  - TCP from the bastion to \(target), on the target's firewall or security group\n"
            out += "    (check on the bastion: nc -z \(target.replacingColonPort()))\n"
        }
        out += "\nThen check the whole path from here: warren doctor \(tunnel.name)\n"
        return out
    }

    static func orderedUnique(_ items: [String]) -> [String] {
        var seen: Set<String> = []
        return items.filter { seen.insert($0).inserted }
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }

    /// `host:port` (or `[v6]:port`) as `host port`, for `nc -z`.
    func replacingColonPort() -> String {
        guard let colon = lastIndex(of: ":") else { return self }
        var host = String(self[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return "\(host) \(self[index(after: colon)...])"
    }
}
