/// A tunnel as a plain `ssh` command line, for a human to reproduce by hand what
/// warren does. Pure.
public enum ManualCommand {
    /// `ssh -v -N -o ExitOnForwardFailure=yes -o IdentitiesOnly=yes -i KEY -p PORT
    /// -o HostKeyAlias=ALIAS -o StrictHostKeyChecking=yes -o UserKnownHostsFile=KNOWN_HOSTS
    /// -o GlobalKnownHostsFile=/dev/null [-o ProxyCommand=...] -L ... -R ... -D ... [user@]host`.
    ///
    /// The bastion's key is checked as the generated ssh_config checks it: against
    /// the tunnel's own known_hosts under warren's alias, never ~/.ssh/known_hosts
    /// and never a prompt. Jump hops are reached through the generated ssh_config
    /// (`ssh -F SSH_CONFIG -W ... HOP`), where each hop is pinned the same way:
    /// `-J` would check them against ~/.ssh/known_hosts.
    public static func ssh(for tunnel: TunnelConfig, knownHostsFile: String, sshConfig: String) -> String {
        let bastion = tunnel.endpoint
        var args = ["ssh", "-v", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "IdentitiesOnly=yes"]
        if !bastion.identityFile.isEmpty { args += ["-i", bastion.identityFile] }
        if bastion.port != 22 { args += ["-p", String(bastion.port)] }
        switch bastion.hostKeyPolicy {
        case .pinned, .acceptNew:
            let strict = bastion.hostKeyPolicy == .pinned ? "yes" : "accept-new"
            args += ["-o", "HostKeyAlias=\(tunnel.alias)", "-o", "StrictHostKeyChecking=\(strict)", "-o", "UserKnownHostsFile=\(knownHostsFile)"]
        case .insecureNoCheck:
            args += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        }
        args += ["-o", "GlobalKnownHostsFile=/dev/null"]
        if !tunnel.jumps.isEmpty {
            let lastHop = tunnel.jumpAlias(tunnel.jumps.count - 1)
            args += ["-o", "ProxyCommand=ssh -F \(sshConfig) -W [%h]:%p \(lastHop)"]
        }
        for forward in tunnel.localForwards { args += ["-L", forward.description] }
        for forward in tunnel.remoteForwards { args += ["-R", forward.description] }
        for forward in tunnel.dynamicForwards { args += ["-D", forward.description] }
        args.append((bastion.user.map { "\($0)@" } ?? "") + bastion.host)
        return args.map(shellQuoted).joined(separator: " ")
    }

    /// The exact command warren runs (without its `-v` and wrapper).
    public static func warren(sshConfig: String, alias: String) -> String {
        ["ssh", "-F", sshConfig, "-N", alias].map(shellQuoted).joined(separator: " ")
    }

    /// The word as a POSIX shell reads it: as is when it holds only safe
    /// characters, else in single quotes.
    public static func shellQuoted(_ word: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-".unicodeScalars)
        if !word.isEmpty && word.unicodeScalars.allSatisfy(safe.contains) { return word }
        return "'" + word.replacingAll("'", with: "'\\''") + "'"
    }
}

extension String {
    /// `replacingOccurrences` without Foundation.
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
