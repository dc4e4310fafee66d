extension HostKey {
    /// `SHA256:` and the unpadded base64 of the blob's SHA-256, exactly as
    /// `ssh-keygen -lf` and ssh's own messages print it; nil if the blob is not base64.
    public var fingerprint: String? {
        Base64.decode(blob).map { "SHA256:" + Base64.encode(SHA256.hash($0), padding: false) }
    }

    /// The name ssh-keygen shows in parentheses: `ED25519`, `RSA`, `ECDSA`, ...
    public var displayType: String {
        switch type {
        case "ssh-ed25519": return "ED25519"
        case "ssh-rsa": return "RSA"
        case "ssh-dss": return "DSA"
        case "sk-ssh-ed25519@openssh.com": return "ED25519-SK"
        case "sk-ecdsa-sha2-nistp256@openssh.com": return "ECDSA-SK"
        case _ where type.hasPrefix("ecdsa-sha2-"): return "ECDSA"
        default: return type
        }
    }

    /// The key size ssh-keygen -l prints: 256 for Ed25519, the curve for ECDSA,
    /// the modulus length for RSA; nil when the blob does not say.
    public var bits: Int? {
        switch type {
        case "ssh-ed25519", "sk-ssh-ed25519@openssh.com": return 256
        case "ecdsa-sha2-nistp256", "sk-ecdsa-sha2-nistp256@openssh.com": return 256
        case "ecdsa-sha2-nistp384": return 384
        case "ecdsa-sha2-nistp521": return 521
        case "ssh-rsa": return Base64.decode(blob).flatMap(Self.rsaModulusBits)
        default: return nil
        }
    }

    /// The bit length of n in an `ssh-rsa` blob: string "ssh-rsa", mpint e, mpint n.
    static func rsaModulusBits(_ blob: [UInt8]) -> Int? {
        var offset = 0
        func field() -> ArraySlice<UInt8>? {
            guard offset + 4 <= blob.count else { return nil }
            let length = blob[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            offset += 4
            guard length >= 0, offset + length <= blob.count else { return nil }
            defer { offset += length }
            return blob[offset..<offset + length]
        }
        guard field() != nil, field() != nil, let n = field() else { return nil }
        guard let first = n.firstIndex(where: { $0 != 0 }) else { return 0 }
        let leading = n[first].leadingZeroBitCount
        return (n.endIndex - first) * 8 - leading
    }
}

/// A host key pinned by its SHA-256 fingerprint (`host_key = "SHA256:..."`),
/// as a bastion's admin can read it out over the phone. warren trusts a key
/// only after checking that its fingerprint is this one.
public struct HostKeyFingerprint: Sendable, Hashable, CustomStringConvertible {
    /// The unpadded base64 of the 32-byte digest.
    public var base64: String

    public static let prefix = "SHA256:"

    /// Whether a `host_key` value is meant as a fingerprint rather than a key.
    public static func looksLikeFingerprint(_ text: String) -> Bool {
        text.hasPrefix(prefix) || text.hasPrefix("MD5:") || text.lowercased().hasPrefix("sha256:")
    }

    /// Parses `SHA256:` followed by 43 base64 characters (a trailing `=` is allowed).
    public static func parse(_ text: String) -> Result<HostKeyFingerprint, HostKeyParseError> {
        let usage = "a fingerprint is \"SHA256:\" and 43 base64 characters, as `warren hostkey TUNNEL` and `ssh-keygen -lf` print it"
        if text.hasPrefix("MD5:") {
            return .failure(.init(reason: "MD5 fingerprints are not accepted; \(usage)"))
        }
        guard text.hasPrefix(prefix) else { return .failure(.init(reason: usage)) }
        var body = Substring(text.dropFirst(prefix.count))
        while body.hasSuffix("=") { body.removeLast() }
        guard let digest = Base64.decode(String(body)), digest.count == 32 else {
            return .failure(.init(reason: "\"\(TerminalText.escape(text))\" is not a SHA-256 fingerprint; \(usage)"))
        }
        return .success(HostKeyFingerprint(base64: Base64.encode(digest, padding: false)))
    }

    /// Whether `key` has this fingerprint.
    public func matches(_ key: HostKey) -> Bool { key.fingerprint == description }

    public var description: String { Self.prefix + base64 }
}
