import Testing
import WarrenCore
import WarrenTestSupport

/// The decisions about host keys: pinned, by fingerprint, learned on first use.
@Suite struct HostKeyCheckTests {
    static let a = try! HostKey.parse(FingerprintTests.recorded[0].key).get()
    static let b = try! HostKey.parse(FingerprintTests.recorded[4].key).get()
    static let rsa = try! HostKey.parse(FingerprintTests.recorded[1].key).get()

    func endpoint(_ policy: HostKeyPolicy = .pinned, keys: [HostKey] = [], fingerprints: [HostKey] = []) -> SSHEndpoint {
        SSHEndpoint(
            host: "h", identityFile: "/k", hostKeys: keys,
            hostKeyFingerprints: fingerprints.map { try! HostKeyFingerprint.parse($0.fingerprint!).get() }, hostKeyPolicy: policy)
    }

    @Test func pinnedKeyMatchesAmongOthers() {
        #expect(HostKeyCheck.verdict(for: endpoint(keys: [Self.a]), learned: [], offered: [Self.rsa, Self.a]) == .matches(Self.a))
    }

    @Test func changedKeyNamesBothFingerprints() {
        guard case .mismatch(let pinned, let offered) = HostKeyCheck.verdict(for: endpoint(keys: [Self.a]), learned: [], offered: [Self.b]) else {
            Issue.record("expected a mismatch")
            return
        }
        #expect(pinned == ["256 \(Self.a.fingerprint!) (ED25519)"])
        #expect(offered == ["256 \(Self.b.fingerprint!) (ED25519)"])
    }

    @Test func fingerprintPinMatchesTheKeyWithIt() {
        #expect(HostKeyCheck.verdict(for: endpoint(fingerprints: [Self.a]), learned: [], offered: [Self.a]) == .matches(Self.a))
        guard case .mismatch(let pinned, _) = HostKeyCheck.verdict(for: endpoint(fingerprints: [Self.a]), learned: [], offered: [Self.b]) else {
            Issue.record("expected a mismatch")
            return
        }
        #expect(pinned == ["\(Self.a.fingerprint!) (by fingerprint)"])
    }

    @Test func acceptNewPinsOnFirstUseThenChecks() {
        let e = endpoint(.acceptNew)
        #expect(HostKeyCheck.verdict(for: e, learned: [], offered: [Self.rsa, Self.a]) == .firstUse(Self.a))
        #expect(HostKeyCheck.verdict(for: e, learned: [Self.a], offered: [Self.a]) == .matches(Self.a))
        if case .mismatch = HostKeyCheck.verdict(for: e, learned: [Self.a], offered: [Self.b]) {} else {
            Issue.record("a learned key that changed is a mismatch")
        }
        #expect(HostKeyCheck.verdict(for: endpoint(.insecureNoCheck), learned: [], offered: [Self.b]) == .notChecked)
    }

    @Test func resolvePrefersKnownKeysAndReportsUnmatchedPins() {
        let pins = [Self.a, Self.b].map { try! HostKeyFingerprint.parse($0.fingerprint!).get() }
        let known = HostKeyCheck.resolve(pins, known: [Self.a], offered: [Self.b, Self.rsa])
        #expect(known.keys == [Self.a, Self.b])
        #expect(known.unmatched.isEmpty)
        let missing = HostKeyCheck.resolve(pins, known: [], offered: [Self.rsa])
        #expect(missing.keys.isEmpty)
        #expect(missing.unmatched == pins)
    }

    @Test func unresolvedFingerprintsShrinkAsKeysArrive() {
        var e = endpoint(fingerprints: [Self.a, Self.b])
        #expect(e.unresolvedFingerprints.count == 2)
        e.hostKeys = [Self.b]
        #expect(e.unresolvedFingerprints.map(\.description) == [Self.a.fingerprint!])
    }
}
