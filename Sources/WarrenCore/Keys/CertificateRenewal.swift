/// When a user certificate from `certificate_command` is renewed, and whether a
/// freshly issued one may be used: plain functions over times (Unix seconds), no clock.
///
/// A certificate is renewed at two thirds of its lifetime (smallstep's rule;
/// tbot renews at a third of 60 minutes, pdc-agent 5 minutes before the end):
/// a third is left for a failing CA to come back before logins fail.
public enum CertificateRenewal {
    /// The share of a certificate's lifetime after which it is renewed.
    public static let renewAt = 2.0 / 3.0
    /// The first wait after a failed renewal, doubled per failure up to `maxRetryDelay`.
    public static let firstRetryDelay = 5.0
    public static let maxRetryDelay = 300.0

    /// When to renew a certificate valid from `validFrom` to `validTo`; nil when
    /// it never expires. A certificate without a start counts from `obtained`.
    public static func renewalTime(validFrom: Double?, validTo: Double?, obtained: Double) -> Double? {
        guard let validTo else { return nil }
        let start = min(validFrom ?? obtained, validTo)
        return start + (validTo - start) * renewAt
    }

    /// When to try again after `failures` failed renewals in a row (1 for the
    /// first), the last at `now`: doubling from `firstRetryDelay`, and while
    /// the kept certificate is still valid, at least four tries before it ends.
    public static func retryTime(failures: Int, now: Double, validTo: Double?) -> Double {
        var delay = firstRetryDelay
        for _ in 1..<max(1, min(failures, 20)) { delay *= 2 }
        delay = min(maxRetryDelay, delay)
        if let validTo, validTo > now {
            delay = min(delay, max(1, (validTo - now) / 4))
        }
        return now + delay
    }

    /// Whether a certificate can log in at `now`, as sshd judges it.
    public enum Validity: Sendable, Equatable {
        case valid
        case notYetValid(from: Double)
        case expired(at: Double)
    }

    public static func validity(from: Double?, to: Double?, at now: Double) -> Validity {
        if let from, now < from { return .notYetValid(from: from) }
        if let to, now >= to { return .expired(at: to) }
        return .valid
    }

    /// Why a certificate just issued must not replace the one in use; nil when
    /// it may. It must be a user certificate, for this key, valid now, and name
    /// the login user when it names principals at all.
    public static func rejection(
        _ info: CertificateInfo, validFrom: Double?, validTo: Double?, user: String, keyFingerprint: String?, now: Double
    ) -> String? {
        if !info.isUserCertificate { return "it is a host certificate, not a user certificate" }
        if let keyFingerprint, let certified = info.publicKeyFingerprint, certified != keyFingerprint {
            return "it certifies the key \(certified), not this tunnel's key \(keyFingerprint)"
        }
        switch validity(from: validFrom, to: validTo, at: now) {
        case .valid: break
        case .notYetValid: return "it is not valid yet (\(info.summary)); is this machine's clock or the CA's right?"
        case .expired: return "it has already expired (\(info.summary)); is this machine's clock or the CA's right?"
        }
        if !info.principals.isEmpty && !info.principals.contains(user) {
            return "it does not name the login user \(user) (\(info.summary)); have the CA sign it for \(user), or set `user` to one of its principals"
        }
        return nil
    }
}
