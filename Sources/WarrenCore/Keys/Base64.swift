/// Standard base64 (RFC 4648, `+/`), as in OpenSSH key lines and fingerprints.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let values: [UInt8: UInt8] = Dictionary(
        uniqueKeysWithValues: alphabet.enumerated().map { ($0.element, UInt8($0.offset)) })

    /// Encodes `bytes`; `padding: false` drops the trailing `=` as ssh-keygen's fingerprints do.
    static func encode(_ bytes: [UInt8], padding: Bool = true) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            if i + 1 < bytes.count { out.append(alphabet[Int((b1 & 0x0f) << 2 | b2 >> 6)]) } else if padding { out.append(UInt8(ascii: "=")) }
            if i + 2 < bytes.count { out.append(alphabet[Int(b2 & 0x3f)]) } else if padding { out.append(UInt8(ascii: "=")) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes `text` (padding optional); nil if it is not base64.
    static func decode(_ text: String) -> [UInt8]? {
        var digits: [UInt8] = []
        var sawPadding = false
        for byte in text.utf8 {
            if byte == UInt8(ascii: "=") {
                sawPadding = true
                continue
            }
            guard !sawPadding, let value = values[byte] else { return nil }
            digits.append(value)
        }
        guard digits.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count * 3 / 4)
        var i = 0
        while i < digits.count {
            let d = (0..<4).map { i + $0 < digits.count ? digits[i + $0] : 0 }
            let n = min(4, digits.count - i)
            out.append(d[0] << 2 | d[1] >> 4)
            if n > 2 { out.append((d[1] & 0x0f) << 4 | d[2] >> 2) }
            if n > 3 { out.append((d[2] & 0x03) << 6 | d[3]) }
            i += 4
        }
        return out
    }
}
