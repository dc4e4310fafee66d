/// The key pairs `warren keygen` makes.
public enum KeyType: String, Sendable, CaseIterable {
    /// The default: short, fast, supported by every OpenSSH since 6.5.
    case ed25519
    /// For bastions that only take RSA (old OpenSSH, some appliances).
    case rsa

    /// The private key's file name, as ssh-keygen names it by default.
    public var fileName: String { "id_\(rawValue)" }

    /// `--bits` for RSA: ssh-keygen's default, and the range warren accepts.
    public static let defaultRSABits = 3072
    public static let rsaBits = 2048...16384

    /// Why `bits` cannot be used with this type, or nil.
    public func bitsReason(_ bits: Int?) -> String? {
        guard let bits else { return nil }
        switch self {
        case .ed25519: return "--bits applies to RSA keys only; an Ed25519 key is always 256 bits"
        case .rsa:
            return Self.rsaBits.contains(bits) ? nil : "--bits \(bits) is out of range; allowed for RSA: \(Self.rsaBits.lowerBound)-\(Self.rsaBits.upperBound)"
        }
    }
}
