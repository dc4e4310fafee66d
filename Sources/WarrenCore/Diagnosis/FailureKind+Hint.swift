/// Every failure kind's hint, from the bastion troubleshooting checklist, with
/// the real values filled in: the only place hint prose lives. A value a hint
/// needs is a field of `HintContext`, so the compiler catches a missing one.
extension FailureKind {
    /// What a human should check or do, naming the tunnel, the failing host (the
    /// bastion or a jump hop), the user, ports and targets.
    public func hint(in c: HintContext) -> String {
        let h = c.failing
        switch self {
        case .dnsFailure:
            return "\(h.role)'s host name does not resolve from this machine: check `host` in \(h.keyPath) and this machine's DNS (getent hosts \(h.host))"
        case .connectTimeout:
            return "no answer from \(h.role) (\(h.host) port \(h.port)): is this machine's public IP allowlisted on the bastion or its security group/firewall (`warren bastion-config \(c.tunnel)` shows the address)? is `host`/`port` in \(h.keyPath) right?"
        case .connectionRefused:
            return "nothing listens on \(h.role)'s SSH port (\(h.host) port \(h.port)): is sshd running there, and is `port` in \(h.keyPath) right?"
        case .hostKeyUnknown:
            return "no host key is pinned for \(h.role) (\(h.host)): run `warren hostkey \(c.tunnel)` and paste the printed `host_key` line into \(h.keyPath) (or set host_key_policy = \"accept-new\")"
        case .hostKeyChanged:
            return "\(h.role)'s host key differs from the pinned one (\(h.host)): if it was rebuilt, confirm the new fingerprint with its admin and update `host_key` in \(h.keyPath) (`warren hostkey \(c.tunnel)`), or, with host_key_policy = \"accept-new\", forget the key it learned (`warren hostkey --forget \(c.tunnel)`; also after changing `host`); otherwise this may be an attack: do not connect"
        case .authFailed:
            return "\(h.role) refused the key (\(h.user)@\(h.host) port \(h.port)): is the public key in ~\(h.user)/.ssh/authorized_keys there (`warren authorized-key \(c.tunnel)`; `warren bastion-config \(c.tunnel)` for every hop)? is ~/.ssh 0700 and authorized_keys 0600 or 0644, owned by that user (\(h.user))? is `user` in \(h.keyPath) right?"
        case .certificateExpired:
            return "the user certificate\(h.certificateFile.isEmpty ? "" : " " + h.certificateFile) has expired or is not valid yet, so \(h.role) refuses it: with `certificate_command` warren renews it itself (is the CA reachable, and does the command work when run by hand? its error is in warren's log and `warren status`); without one, have the CA sign the key again (`ssh-keygen -s CA -I ID -n \(h.user) -V +52w \(Self.named(h.identityFile)).pub`); check this machine's clock (`timedatectl`)"
        case .keyMissing:
            return "the identity file \(Self.named(h.identityFile)) does not exist: create it with `warren keygen` (or `warren keygen --tunnel \(c.tunnel)`) or fix `identity_file` in \(h.keyPath)"
        case .keyPermissions:
            return "the private key is readable by others and ssh refuses it: chmod 600 \(Self.named(h.identityFile))"
        case .keyPassphrase:
            return "the bastion accepts this key, but the key (\(Self.named(h.identityFile))) is protected by a passphrase ssh could not use: set `passphrase_file` in \(h.keyPath) (a 0600 file holding the passphrase), check the passphrase in it, or load the key into an agent (`identity_agent`)"
        case .localPortInUse:
            return "the local port of a forward is already taken on this machine: stop the other program (\(Self.ssCommand(c.localPorts))) or change `local_forward` in tunnels.\(c.tunnel)"
        case .targetUnreachable:
            return "the bastion cannot reach the target: is the database up, and does the bastion's security group allow it? try `\(Self.ncCommands(c.targets))` on the bastion (\(c.bastion.host))"
        case .remoteForwardFailed:
            return "the bastion could not listen on the remote forward's port (\(c.remoteListens.joined(separator: ", "))): is it taken there, or does sshd forbid it (AllowTcpForwarding, GatewayPorts, permitlisten; `warren bastion-config \(c.tunnel)`)?"
        case .keepaliveTimeout:
            return "\(h.role) (\(h.host)) stopped answering keepalives (half-dead connection, network drop or frozen host): warren reconnects; if it repeats, check the network path"
        case .addressBlocked:
            return "\(h.role) (\(h.host) port \(h.port)) closed the connection before its SSH banner: its sshd is refusing this machine's address. Usually PerSourcePenalties (OpenSSH 9.8+, on by default: failed logins cost 5 s each and connections that end before a login 1 s; past 15 s the address is blocked for that long, up to 10 minutes), else MaxStartups (too many logins at once) or a firewall such as fail2ban. warren retries every 3 s without adding to it (sshd drops attempts during a block without counting them), so the tunnel comes back within seconds of its end. The bastion's admin can check `sshd -T | grep -i persource`, look for `drop connection ... penalty` lines in sshd's log, and exempt this machine with PerSourcePenaltyExemptList"
        case .connectionLost:
            return "the connection to \(h.role) (\(h.host)) was closed (host restarted, sshd killed the session, or the network dropped): warren reconnects"
        case .forwardingForbidden:
            return "the bastion refuses port forwarding for this key or user (\(c.bastion.user)@\(c.bastion.host)): ask its admin to allow it (AllowTcpForwarding, and permitopen/permitlisten in authorized_keys for these targets; `warren bastion-config \(c.tunnel)` prints both)"
        case .unknown:
            return "ssh failed in a way warren does not recognise: run `warren doctor \(c.tunnel)` and read ssh's message"
        }
    }

    /// `ss -ltnp 'sport = :P'`, one filter per port.
    static func ssCommand(_ ports: [Int]) -> String {
        guard !ports.isEmpty else { return "ss -ltnp" }
        return "ss -ltnp '" + ports.map { "sport = :\($0)" }.joined(separator: " or ") + "'"
    }

    /// `nc -z HOST PORT` for each target.
    static func ncCommands(_ targets: [String]) -> String {
        guard !targets.isEmpty else { return "nc -z TARGET PORT" }
        return targets.map { "nc -z \($0)" }.joined(separator: "; ")
    }

    static func named(_ path: String) -> String { path.isEmpty ? "(none: an agent or a password logs in)" : path }
}

extension HintContext {
    /// For text without a tunnel at hand: `TUNNEL`, `HOST`, `PORT` stand for the values.
    public static let placeholders = HintContext(
        tunnel: "TUNNEL",
        failing: Host(role: "the bastion", host: "HOST", port: 22, user: "USER", keyPath: "tunnels.TUNNEL", identityFile: "IDENTITY_FILE", certificateFile: "CERTIFICATE_FILE"),
        bastion: Host(role: "the bastion", host: "HOST", port: 22, user: "USER", keyPath: "tunnels.TUNNEL", identityFile: "IDENTITY_FILE"),
        localPorts: [], targets: ["HOST PORT"], remoteListens: ["PORT"])

    public init(tunnel: String, failing: Host, bastion: Host, localPorts: [Int], targets: [String], remoteListens: [String]) {
        self.tunnel = tunnel
        self.failing = failing
        self.bastion = bastion
        self.localPorts = localPorts
        self.targets = targets
        self.remoteListens = remoteListens
    }
}
