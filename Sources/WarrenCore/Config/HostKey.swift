/// A pinned host key: a public key line as in known_hosts, without host field.
public struct HostKey: Sendable, Hashable, CustomStringConvertible {
    /// The key type, e.g. `ssh-ed25519`.
    public var type: String
    /// The base64 key blob.
    public var blob: String

    public static let knownTypes: Set<String> = [
        "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com", "ssh-dss",
    ]

    public init(type: String, blob: String) {
        self.type = type
        self.blob = blob
    }

    /// Parses `TYPE BASE64 [comment]`, the form `ssh-keyscan`, `*.pub` files and
    /// `warren hostkey` print (a leading host field, as keyscan prints, is
    /// accepted and dropped). Returns a reason on failure.
    public static func parse(_ text: String) -> Result<HostKey, HostKeyParseError> {
        var fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        if let first = fields.first, !knownTypes.contains(first), fields.count >= 3,
            knownTypes.contains(fields[1])
        {
            fields.removeFirst()
        }
        guard fields.count >= 2 else {
            return .failure(.init(reason: "expected \"TYPE BASE64\" such as \"ssh-ed25519 AAAAC3Nza...\" (`warren hostkey TUNNEL` prints it)"))
        }
        guard knownTypes.contains(fields[0]) else {
            return .failure(.init(reason: "unknown key type \"\(fields[0])\"; allowed: \(knownTypes.sorted().joined(separator: ", "))"))
        }
        let blob = fields[1]
        let base64 = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
        guard blob.count >= 16, blob.allSatisfy({ base64.contains($0) }), Base64.decode(blob) != nil else {
            return .failure(.init(reason: "the key data is not base64"))
        }
        return .success(HostKey(type: fields[0], blob: blob))
    }

    public var description: String { "\(type) \(blob)" }
}

public struct HostKeyParseError: Error, Sendable {
    public var reason: String
}
