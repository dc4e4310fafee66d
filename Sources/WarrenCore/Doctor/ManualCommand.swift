/// A tunnel as a plain `ssh` command line, for a human to reproduce by hand what
/// warren does. Pure.
public enum ManualCommand {
    /// `ssh -v -N -o ExitOnForwardFailure=yes -o IdentitiesOnly=yes -i KEY -p PORT
    /// [-J user@hop:port,...] -L ... -R ... -D ... [user@]host`.
    ///
    /// Jump hops take their key from `~/.ssh/config` here (`-J` passes no `-i`);
    /// the generated ssh_config is the exact form.
    public static func ssh(for tunnel: TunnelConfig) -> String {
        let bastion = tunnel.endpoint
        var args = ["ssh", "-v", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "IdentitiesOnly=yes"]
        if !bastion.identityFile.isEmpty { args += ["-i", bastion.identityFile] }
        if bastion.port != 22 { args += ["-p", String(bastion.port)] }
        if !tunnel.jumps.isEmpty {
            args += ["-J", tunnel.jumps.map { hop in
                let user = hop.user.map { "\($0)@" } ?? ""
                return "\(user)\(bracketed(hop.host)):\(hop.port)"
            }.joined(separator: ",")]
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

    static func bracketed(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

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
