/// What the keys a host offers mean for the keys pinned for it. Pure: the
/// offered keys come from ssh-keyscan, the learned ones from known_hosts.
public enum HostKeyVerdict: Sendable, Equatable {
    /// An offered key is pinned (as a key or by its fingerprint): ssh will trust it.
    case matches(HostKey)
    /// No offered key is pinned: ssh refuses the host (`host_key_changed`).
    case mismatch(pinned: [String], offered: [String])
    /// `accept-new` and nothing learned yet: ssh pins the offered key on first use.
    case firstUse(HostKey?)
    /// `insecure-no-check`: ssh checks nothing.
    case notChecked
}

public enum HostKeyCheck {
    /// - Parameters:
    ///   - learned: keys recorded under the endpoint's alias in the tunnel's known_hosts
    ///     (what `accept-new` pinned on first use).
    ///   - offered: the keys the host offers now.
    public static func verdict(for endpoint: SSHEndpoint, learned: [HostKey], offered: [HostKey]) -> HostKeyVerdict {
        let pinnedKeys: [HostKey]
        switch endpoint.hostKeyPolicy {
        case .insecureNoCheck: return .notChecked
        case .acceptNew:
            if learned.isEmpty { return .firstUse(preferred(offered)) }
            pinnedKeys = learned
        case .pinned:
            pinnedKeys = endpoint.hostKeys
        }
        let fingerprints = endpoint.hostKeyPolicy == .pinned ? endpoint.hostKeyFingerprints : []
        if let match = offered.first(where: { key in
            pinnedKeys.contains(key) || fingerprints.contains(where: { $0.matches(key) })
        }) {
            return .matches(match)
        }
        let pinned = pinnedKeys.map(describe) + fingerprints.map { "\($0) (by fingerprint)" }
        return .mismatch(pinned: pinned, offered: offered.map(describe))
    }

    /// The keys that satisfy the fingerprint pins: the ones already known
    /// (learned earlier) first, then those offered now. Fingerprints no key
    /// matches come back as `unmatched`.
    public static func resolve(
        _ fingerprints: [HostKeyFingerprint], known: [HostKey], offered: [HostKey]
    ) -> (keys: [HostKey], unmatched: [HostKeyFingerprint]) {
        var keys: [HostKey] = []
        var unmatched: [HostKeyFingerprint] = []
        for pin in fingerprints {
            if let key = known.first(where: pin.matches) ?? offered.first(where: pin.matches) {
                if !keys.contains(key) { keys.append(key) }
            } else {
                unmatched.append(pin)
            }
        }
        return (keys, unmatched)
    }

    /// The key to suggest pinning: Ed25519, then ECDSA, then RSA, then anything.
    public static func preferred(_ keys: [HostKey]) -> HostKey? {
        let order = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"]
        return keys.min { (order.firstIndex(of: $0.type) ?? order.count) < (order.firstIndex(of: $1.type) ?? order.count) }
    }

    /// `256 SHA256:... (ED25519)`: the form of `ssh-keygen -lf`, without the comment.
    public static func describe(_ key: HostKey) -> String {
        let bits = key.bits.map { "\($0) " } ?? ""
        return "\(bits)\(key.fingerprint ?? "(not base64)") (\(key.displayType))"
    }

    /// Keys from `ssh-keyscan` stdout (`[HOST]:PORT TYPE BASE64` or `HOST TYPE BASE64`)
    /// or from known_hosts lines; `#` comments and lines that do not parse are skipped.
    /// With `host`, only lines whose first field is that host are read.
    public static func parseKeyLines(_ text: String, host: String? = nil) -> [HostKey] {
        var keys: [HostKey] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 3, !fields[0].hasPrefix("#") else { continue }
            if let host, fields[0] != host { continue }
            if case .success(let key) = HostKey.parse("\(fields[1]) \(fields[2])"), !keys.contains(key) {
                keys.append(key)
            }
        }
        return keys
    }
}

extension HostKeyCheck {
    /// known_hosts text without the lines of `aliases` (the keys `accept-new`
    /// learned), and how many lines went. `warren hostkey --forget` writes this,
    /// so that the next connection learns the key it is offered.
    public static func forgetting(aliases: Set<String>, in knownHosts: String) -> (text: String, removed: Int) {
        var kept: [Substring] = []
        var removed = 0
        for line in knownHosts.split(separator: "\n", omittingEmptySubsequences: false) {
            if let host = line.split(separator: " ").first, aliases.contains(String(host)) {
                removed += 1
            } else {
                kept.append(line)
            }
        }
        return (kept.joined(separator: "\n"), removed)
    }
}
