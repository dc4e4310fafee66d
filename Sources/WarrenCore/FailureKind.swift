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
    /// The user certificate has expired or is not valid yet. ssh does not say
    /// so (9.2 and 10.x print only `Permission denied (publickey)`; the server
    /// logs `Certificate invalid: expired`): warren decides it from the
    /// certificate's own validity, read with `ssh-keygen -L`, at the failure.
    case certificateExpired = "certificate_expired"
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
    /// The bastion's sshd closed the connection before its SSH banner: it is
    /// refusing this machine's address (PerSourcePenalties since OpenSSH 9.8,
    /// MaxStartups, a firewall or fail2ban). Not a lost connection: it never
    /// started, and retrying early does not shorten the block.
    case addressBlocked = "address_blocked"
    /// An established connection was closed or reset.
    case connectionLost = "connection_lost"
    /// The bastion refuses port forwarding for this key or user.
    case forwardingForbidden = "forwarding_forbidden"
    /// Anything ssh said that warren does not recognise.
    case unknown = "unknown"

    /// What a human should check or do, with placeholders (`TUNNEL`, `HOST`,
    /// `PORT`) where no tunnel is at hand. Prefer ``hint(in:)``, which names the
    /// real values; both come from the one text in FailureKind+Hint.swift.
    public var hint: String { hint(in: .placeholders) }

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

    /// The bastion (or a hop) refused the login itself: every tunnel that logs
    /// in the same way would be refused too.
    public var isLoginRefusal: Bool {
        self == .authFailed || self == .keyPassphrase
    }
}
