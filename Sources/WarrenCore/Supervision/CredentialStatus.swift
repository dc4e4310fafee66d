/// `credentials` in status.json: the key a tunnel logs in with and, with
/// `certificate_command`, its certificate and how its last renewal went.
/// Filled in by the supervisor (not the tunnel's runner): the runner knows
/// ssh, the supervisor knows the files.
public struct CredentialStatus: Sendable, Codable, Equatable {
    public var key: KeyStatus?
    public var certificate: CertificateStatus?

    public init(key: KeyStatus? = nil, certificate: CertificateStatus? = nil) {
        self.key = key
        self.certificate = certificate
    }
}

/// The tunnel's key file: its fingerprint and when it was made.
public struct KeyStatus: Sendable, Codable, Equatable {
    public var file: String
    /// `SHA256:...`, as `ssh-keygen -lf` prints it.
    public var fingerprint: String?
    /// When the key file was written (RFC 3339, UTC): its age.
    public var created: String?
    /// A next key waits for `warren rotate` (`warren keygen --tunnel NAME --next`).
    public var next: String?

    public init(file: String, fingerprint: String?, created: String?, next: String? = nil) {
        self.file = file
        self.fingerprint = fingerprint
        self.created = created
        self.next = next
    }
}

/// A certificate warren renews (`certificate_command`).
public struct CertificateStatus: Sendable, Codable, Equatable {
    public var file: String
    /// The certificate in use (the last good one): its validity (RFC 3339, UTC) and principals.
    public var validAfter: String?
    public var validBefore: String?
    /// `validBefore` as Unix time, for metrics.
    public var validBeforeUnix: Double?
    public var principals: [String]?
    /// When warren renews it next (RFC 3339, UTC).
    public var nextRenewal: String?
    public var lastRenewal: RenewalResult?

    public init(
        file: String, validAfter: String? = nil, validBefore: String? = nil, validBeforeUnix: Double? = nil,
        principals: [String]? = nil, nextRenewal: String? = nil, lastRenewal: RenewalResult? = nil
    ) {
        self.validBeforeUnix = validBeforeUnix
        self.file = file
        self.validAfter = validAfter
        self.validBefore = validBefore
        self.principals = principals
        self.nextRenewal = nextRenewal
        self.lastRenewal = lastRenewal
    }

    enum CodingKeys: String, CodingKey {
        case file, principals
        case validAfter = "valid_after"
        case validBefore = "valid_before"
        case validBeforeUnix = "valid_before_unix"
        case nextRenewal = "next_renewal"
        case lastRenewal = "last_renewal"
    }
}

/// How the last run of `certificate_command` went.
public struct RenewalResult: Sendable, Codable, Equatable {
    /// When it ran (RFC 3339, UTC) and the same as Unix time, for metrics.
    public var at: String
    public var atUnix: Double
    public var ok: Bool
    /// What went wrong (the command's stderr, escaped), or what was installed.
    public var message: String

    public init(at: String, atUnix: Double, ok: Bool, message: String) {
        self.at = at
        self.atUnix = atUnix
        self.ok = ok
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case at, ok, message
        case atUnix = "at_unix"
    }
}
