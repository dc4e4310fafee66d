/// What `warren bastion-config TUNNEL` prints for the admins of the bastion and
/// of every jump hop: each host's authorized_keys line and an sshd_config
/// `Match User` block that allows exactly the forwarding the tunnel needs.
/// Pure: keys, lines and the source address come in as values.
public enum BastionConfig {
    /// One host ssh dials for the tunnel, in dialling order.
    public struct Host: Sendable {
        /// `jump hop 1`, `bastion`.
        public var role: String
        public var endpoint: SSHEndpoint
        /// The login user (the config's, else the local user ssh sends).
        public var user: String
        /// What this host's key may do, as authorized_keys options.
        public var policy: AuthorizedKeyPolicy
        /// The rendered authorized_keys line, or why there is none (an agent or a password).
        public var line: Result<String, LineUnavailable>
        /// The sshd_config lines under `Match User`.
        public var match: [String]

        public init(role: String, endpoint: SSHEndpoint, user: String, policy: AuthorizedKeyPolicy, line: Result<String, LineUnavailable>, match: [String]) {
            self.role = role
            self.endpoint = endpoint
            self.user = user
            self.policy = policy
            self.line = line
            self.match = match
        }
    }

    public struct LineUnavailable: Error, Sendable {
        public var reason: String
        public init(_ reason: String) { self.reason = reason }
    }

    /// The policy of each host: a jump hop may only open the next host's SSH port;
    /// the bastion, the tunnel's forwards. `from=` only on the first host dialled,
    /// the only one that sees this machine's address.
    public static func policies(_ tunnel: TunnelConfig) -> [AuthorizedKeyPolicy] {
        let endpoints = tunnel.endpointsInOrder.map(\.endpoint)
        let from = tunnel.allowedFrom.isEmpty ? nil : tunnel.allowedFrom.joined(separator: ",")
        var policies: [AuthorizedKeyPolicy] = []
        for index in endpoints.indices.dropLast() {
            let next = endpoints[index + 1]
            policies.append(AuthorizedKeyPolicy(
                permitOpen: [Forward.Endpoint.tcp(host: next.host, port: next.port).description],
                permitListen: [AuthorizedKeyPolicy.nowhere], from: index == 0 ? from : nil, notes: []))
        }
        var bastion = AuthorizedKeyPolicy(tunnel: tunnel)
        if !tunnel.jumps.isEmpty { bastion.from = nil }
        policies.append(bastion)
        return policies
    }

    /// The `Match User` body for a host: forwarding only in the directions used,
    /// PermitOpen/PermitListen as in the key's options, no TTY, X11, agent or
    /// tun forwarding, any session forced to /bin/false, and keepalives from the
    /// server side so that sshd drops a dead tunnel too.
    public static func matchLines(_ policy: AuthorizedKeyPolicy, tunnel: TunnelConfig, isBastion: Bool) -> [String] {
        let local = !isBastion || !tunnel.localForwards.isEmpty || !tunnel.dynamicForwards.isEmpty
        let remote = isBastion && !tunnel.remoteForwards.isEmpty
        let direction = local && remote ? "yes" : (remote ? "remote" : "local")
        let sockets = isBastion && tunnel.forwards.contains { forward in
            if case .unix = forward.listen { return true }
            if case .unix? = forward.target { return true }
            return false
        }
        let open = policy.permitOpen == [AuthorizedKeyPolicy.nowhere] ? "none" : (policy.permitOpen.isEmpty ? "any" : policy.permitOpen.joined(separator: " "))
        let listen = policy.permitListen == [AuthorizedKeyPolicy.nowhere] ? "none" : policy.permitListen.joined(separator: " ")
        return [
            "AllowTcpForwarding \(direction)",
            "PermitOpen \(open)",
            "PermitListen \(listen)",
            "AllowStreamLocalForwarding \(sockets ? "yes" : "no")",
            "GatewayPorts no",
            "AllowAgentForwarding no",
            "X11Forwarding no",
            "PermitTTY no",
            "PermitTunnel no",
            "PermitUserRC no",
            "ForceCommand /bin/false",
            "ClientAliveInterval \(tunnel.keepaliveInterval)",
            "ClientAliveCountMax \(tunnel.keepaliveCount)",
        ]
    }

    /// The whole text. `tunnelsSharingBastion`: how many tunnels of the config
    /// dial the same first host (for the MaxStartups advice); `source`: the
    /// address this machine uses toward the first host, if it could be found.
    public static func render(tunnel: TunnelConfig, hosts: [Host], tunnelsSharingFirstHost: Int, source: Result<String, LineUnavailable>) -> String {
        var out = "# warren bastion-config \(tunnel.name): for the admins of \(hosts.count == 1 ? "the bastion" : "the bastion and its jump hops"), in the order ssh dials them.\n"
        for host in hosts {
            let endpoint = host.endpoint
            out += "\n## \(host.role): \(endpoint.host) port \(endpoint.port), user \(host.user)\n\n"
            switch host.line {
            case .success(let line):
                out += "# Append to ~\(host.user)/.ssh/authorized_keys (directory 0700, file 0600, owned by \(host.user)):\n\(line)\n"
            case .failure(let unavailable):
                out += "# No authorized_keys line: \(unavailable.reason)\n"
            }
            for note in host.policy.notes { out += "# Note: \(note).\n" }
            out += "\n# Append to /etc/ssh/sshd_config (a Match block runs to the end of the file or the next Match),\n"
            out += "# then check and reload: sshd -t && systemctl reload ssh\n"
            out += "Match User \(host.user)\n"
            for line in host.match { out += "    \(line)\n" }
        }
        out += "\n## Every host\n\n"
        out += "# MaxStartups (global, not allowed inside Match) limits unauthenticated connections at once;\n"
        out += "# the default 10:30:100 starts refusing at 10. "
        out += tunnelsSharingFirstHost > 1
            ? "\(tunnelsSharingFirstHost) tunnels of this config dial \(hosts[0].endpoint.host): warren starts at most 8 at once, so keep MaxStartups at 10 or more (e.g. MaxStartups 20:30:100).\n"
            : "One tunnel needs no change.\n"
        out += "\n## The allowlist\n\n"
        switch source {
        case .success(let address):
            out += "# This machine reaches \(hosts[0].endpoint.host) from \(address). If a NAT, proxy or cloud gateway sits in between,\n"
            out += "# the host sees another address: its sshd log names it (`Connection from ADDRESS port ...`).\n"
            out += "Allow TCP from \(address) to \(hosts[0].endpoint.host) port \(hosts[0].endpoint.port).\n"
        case .failure(let why):
            out += "# The address this machine uses toward \(hosts[0].endpoint.host) is unknown (\(why.reason));\n"
            out += "# ask its admin to read it from the sshd log (`Connection from ADDRESS port ...`) after a first attempt.\n"
        }
        return out
    }
}
