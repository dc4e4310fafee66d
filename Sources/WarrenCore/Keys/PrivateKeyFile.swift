/// What warren can tell about a private key file from its text, without
/// decrypting it.
public enum PrivateKeyFile {
    /// Whether the key is protected by a passphrase; nil when the format is not
    /// recognised. OpenSSH's own format names its cipher right after the magic
    /// (`openssh-key-v1\0`, then a length-prefixed cipher name, `none` when clear);
    /// PEM keys say `Proc-Type: 4,ENCRYPTED` or `BEGIN ENCRYPTED PRIVATE KEY`.
    public static func isEncrypted(_ text: String) -> Bool? {
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || text.contains("Proc-Type: 4,ENCRYPTED") { return true }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }
        guard let begin = lines.firstIndex(of: "-----BEGIN OPENSSH PRIVATE KEY-----") else {
            return text.contains("-----BEGIN ") && text.contains("PRIVATE KEY-----") ? false : nil
        }
        let body = lines[(begin + 1)...].prefix { !$0.hasPrefix("-----END") }.joined()
        guard let bytes = Base64.decode(body) else { return nil }
        let magic = Array("openssh-key-v1".utf8) + [0]
        guard bytes.count > magic.count + 4, Array(bytes.prefix(magic.count)) == magic else { return nil }
        let at = magic.count
        let length = bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) }
        guard bytes.count >= at + 4 + length else { return nil }
        return String(decoding: bytes[(at + 4)..<(at + 4 + length)], as: UTF8.self) != "none"
    }
}

extension Substring {
    func trimmingWhitespace() -> String {
        String(drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}
