/// An OpenSSH user certificate as `ssh-keygen -L -f FILE` describes it: who it
/// lets in (principals) and until when. Parsed from that text; the runtime runs
/// the tool and turns the times into dates.
public struct CertificateInfo: Sendable, Equatable {
    /// `Key ID: "..."`, as the CA set it.
    public var keyID: String?
    /// The user names the certificate is valid for; empty means any (sshd then refuses it
    /// unless AuthorizedPrincipals say otherwise).
    public var principals: [String]
    /// `Valid: from T1 to T2` as printed (local time, `YYYY-MM-DDTHH:MM:SS`); nil bounds for `forever`.
    public var validFrom: String?
    public var validTo: String?
    /// `Public key: ED25519-CERT SHA256:...`: the fingerprint of the key it certifies.
    public var publicKeyFingerprint: String?
    /// `Type: ... user certificate` (not a host certificate).
    public var isUserCertificate = true

    public init(keyID: String? = nil, principals: [String], validFrom: String?, validTo: String?) {
        self.keyID = keyID
        self.principals = principals
        self.validFrom = validFrom
        self.validTo = validTo
    }

    /// Reads `ssh-keygen -L` output; nil when it does not describe a certificate.
    public static func parse(_ text: String) -> CertificateInfo? {
        var info = CertificateInfo(principals: [], validFrom: nil, validTo: nil)
        var sawValid = false
        var inPrincipals = false
        for raw in text.split(separator: "\n") {
            let line = Substring(raw).trimmingWhitespace()
            let indented = raw.hasPrefix("                ")  // list items are indented twice
            if inPrincipals && indented && !line.isEmpty {
                if line != "(none)" { info.principals.append(line) }
                continue
            }
            inPrincipals = false
            if line.hasPrefix("Type: ") {
                info.isUserCertificate = !line.hasSuffix("host certificate")
            } else if line.hasPrefix("Public key: ") {
                info.publicKeyFingerprint = line.split(separator: " ").last.map(String.init)
            } else if line.hasPrefix("Key ID: ") {
                info.keyID = String(line.dropFirst("Key ID: ".count)).trimmingCharacters(in: "\"")
            } else if line.hasPrefix("Valid: ") {
                sawValid = true
                let value = line.dropFirst("Valid: ".count)
                if value.hasPrefix("from ") {
                    let parts = value.dropFirst("from ".count).components(separatedBy: " to ")
                    info.validFrom = parts.first
                    info.validTo = parts.count > 1 ? parts[1] : nil
                } else if value.hasPrefix("before ") {
                    info.validTo = String(value.dropFirst("before ".count))
                } else if value.hasPrefix("after ") {
                    info.validFrom = String(value.dropFirst("after ".count))
                }
            } else if line.hasPrefix("Principals:") {
                inPrincipals = true
            }
        }
        return sawValid ? info : nil
    }

    /// One line for doctor and check: `principals tunnel, ops; valid until 2026-12-07T19:01:00`.
    public var summary: String {
        let who = principals.isEmpty ? "no principals" : "principals \(principals.joined(separator: ", "))"
        let until = validTo.map { "valid until \($0)" } ?? "valid forever"
        return "\(who); \(until)"
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }

    fileprivate func components(separatedBy separator: String) -> [String] {
        var parts: [String] = []
        var rest = Substring(self)
        while let range = rest.range(of: separator) {
            parts.append(String(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }
}

extension Substring {
    fileprivate func components(separatedBy separator: String) -> [String] { String(self).components(separatedBy: separator) }
}
