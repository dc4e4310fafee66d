/// Why a tunnel is not up, named so that a human knows what to do.
///
/// The raw values are public interface: they appear in `status.json`, in
/// `warren check` output and in metrics labels.
public enum FailureKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// The bastion's (or a jump hop's) name did not resolve.
    case dnsFailure = "dns_failure"
    /// TCP connect (or the SSH banner) did not complete within ConnectTimeout.
    case connectTimeout = "connect_timeout"
    /// The bastion answered the TCP connect with a reset: nothing listens there.
    case connectionRefused = "connection_refused"
    /// Strict host key checking found no pinned key for the bastion.
    case hostKeyUnknown = "host_key_unknown"
    /// The bastion offered a key that differs from the pinned one.
    case hostKeyChanged = "host_key_changed"
    /// The bastion refused every key warren offered.
    case authFailed = "auth_failed"
    /// The identity file does not exist.
    case keyMissing = "key_missing"
    /// The identity file is readable by others, so ssh refuses to use it.
    case keyPermissions = "key_permissions"
    /// The bastion would accept the key, but the key is protected by a
    /// passphrase that warren was not given (`passphrase_file`), or the one
    /// given is wrong: ssh cannot sign with it.
    case keyPassphrase = "key_passphrase"
    /// A local forward could not bind: the port is taken on this machine.
    case localPortInUse = "local_port_in_use"
    /// Connected, but the bastion cannot open a connection to the target.
    case targetUnreachable = "target_unreachable"
    /// The bastion refused to listen on a remote forward's port.
    case remoteForwardFailed = "remote_forward_failed"
    /// The bastion stopped answering keepalives: the connection is half-dead.
    case keepaliveTimeout = "keepalive_timeout"
    /// An established connection was closed or reset.
    case connectionLost = "connection_lost"
    /// The bastion refuses port forwarding for this key or user.
    case forwardingForbidden = "forwarding_forbidden"
    /// Anything ssh said that warren does not recognise.
    case unknown = "unknown"

    /// What a human should check or do, from the bastion troubleshooting checklist.
    public var hint: String {
        switch self {
        case .dnsFailure:
            return "the bastion's host name does not resolve from this machine: check `host` in the config and this machine's DNS (getent hosts NAME)"
        case .connectTimeout:
            return "no answer from the bastion: is this machine's public IP allowlisted on the bastion or its security group/firewall? is `host`/`port` right?"
        case .connectionRefused:
            return "nothing listens on the bastion's SSH port: is sshd running there, and is `port` right?"
        case .hostKeyUnknown:
            return "no host key is pinned for the bastion: run `warren hostkey TUNNEL` and paste the printed `host_key` line into the config (or set host_key_policy = \"accept-new\")"
        case .hostKeyChanged:
            return "the bastion's host key differs from the pinned one: if the bastion was rebuilt, confirm the new fingerprint with its admin and update `host_key` (`warren hostkey TUNNEL`), or, with host_key_policy = \"accept-new\", forget the key it learned (`warren hostkey --forget TUNNEL`; also after changing `host`); otherwise this may be an attack: do not connect"
        case .authFailed:
            return "the bastion refused the key: is the public key in the user's ~/.ssh/authorized_keys (`warren authorized-key TUNNEL`)? is ~/.ssh 0700 and authorized_keys 0600 or 0644, owned by that user? is `user` right?"
        case .keyMissing:
            return "the identity file does not exist: create it with `warren keygen` or fix `identity_file`"
        case .keyPermissions:
            return "the private key is readable by others and ssh refuses it: chmod 600 the identity file"
        case .keyPassphrase:
            return "the bastion accepts this key, but the key is protected by a passphrase ssh could not use: set `passphrase_file` (a 0600 file holding the passphrase), check the passphrase in it, or load the key into an agent (`identity_agent`)"
        case .localPortInUse:
            return "the local port of a forward is already taken on this machine: stop the other program (ss -ltnp 'sport = :PORT') or change `local_forward`"
        case .targetUnreachable:
            return "the bastion cannot reach the target: is the database up, and does the bastion's security group allow it? try `nc -z HOST PORT` on the bastion"
        case .remoteForwardFailed:
            return "the bastion could not listen on the remote forward's port: is it taken there, or does sshd forbid it (AllowTcpForwarding, GatewayPorts, permitlisten)?"
        case .keepaliveTimeout:
            return "the bastion stopped answering keepalives (half-dead connection, network drop or frozen bastion): warren reconnects; if it repeats, check the network path"
        case .connectionLost:
            return "the connection to the bastion was closed (bastion restarted, sshd killed the session, or the network dropped): warren reconnects"
        case .forwardingForbidden:
            return "the bastion refuses port forwarding for this key or user: ask its admin to allow it (AllowTcpForwarding, and permitopen/permitlisten in authorized_keys for these targets)"
        case .unknown:
            return "ssh failed in a way warren does not recognise: run `warren doctor TUNNEL` and read ssh's message"
        }
    }

    /// Whether retrying cannot help until a human changes something: such tunnels
    /// go to `failed` and retry slowly.
    public var needsHuman: Bool {
        switch self {
        case .hostKeyUnknown, .hostKeyChanged, .authFailed, .keyMissing, .keyPermissions,
            .keyPassphrase, .forwardingForbidden:
            return true
        default:
            return false
        }
    }
}
