import Synchronization
import Testing
import WarrenCore
import WarrenRuntime
import WarrenTestSupport

/// Fingerprint pins turned into keys, with a scanner stand-in (no processes):
/// which key is trusted, when the network is asked, and what a refusal says.
@Suite struct HostKeyResolverTests {
    static let offered = try! HostKey.parse("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPpZicaQZuv+cVeTCef0yebsDNq6YOcrd+TZGxllKj5C").get()
    static let other = try! HostKey.parse(ConfigCases.hostKey).get()

    func tunnel(pin: HostKey, jumpPin: HostKey? = nil) -> TunnelConfig {
        let fingerprint = { (key: HostKey) in try! HostKeyFingerprint.parse(key.fingerprint!).get() }
        return TunnelConfig(
            name: "db", endpoint: SSHEndpoint(host: "bastion", identityFile: "/k", hostKeyFingerprints: [fingerprint(pin)]),
            jumps: jumpPin.map { [SSHEndpoint(host: "jump", identityFile: "/k", hostKeyFingerprints: [fingerprint($0)])] } ?? [],
            localForwards: [Forward(kind: .local, listen: .tcp(host: nil, port: 1), target: .tcp(host: "a", port: 2))])
    }

    final class Scans: Sendable {
        let asked = Mutex<[String]>([])
        let keys: [String: [HostKey]]
        init(_ keys: [String: [HostKey]]) { self.keys = keys }
        var scanner: HostKeyResolver.Scanner {
            { host, _, _ in
                self.asked.withLock { $0.append(host) }
                let keys = self.keys[host] ?? []
                return HostKeyScanner.Scan(keys: keys, banner: nil, problem: keys.isEmpty ? "no answer" : nil)
            }
        }
    }

    @Test func theScannedKeyWithThePinnedFingerprintIsTrusted() async throws {
        let scans = Scans(["bastion": [Self.other, Self.offered]])
        let resolved = try await HostKeyResolver.resolve(tunnel(pin: Self.offered), knownHosts: nil, scanner: scans.scanner)
        #expect(resolved.endpoint.hostKeys == [Self.offered], "only the key with the pinned fingerprint")
        #expect(resolved.endpoint.unresolvedFingerprints.isEmpty)
    }

    @Test func aKeyAlreadyInKnownHostsIsReusedWithoutScanning() async throws {
        let scans = Scans([:])
        let known = "# header\nwarren-db \(Self.offered)\nwarren-other \(Self.other)\n"
        let resolved = try await HostKeyResolver.resolve(tunnel(pin: Self.offered), knownHosts: known, scanner: scans.scanner)
        #expect(resolved.endpoint.hostKeys == [Self.offered])
        #expect(scans.asked.withLock { $0 }.isEmpty)
        // A key recorded under another alias is not taken for this host.
        await #expect(throws: HostKeyResolutionError.self) {
            _ = try await HostKeyResolver.resolve(tunnel(pin: Self.other), knownHosts: known.replacingOccurrences(of: "warren-other", with: "warren-x"), scanner: scans.scanner)
        }
    }

    @Test func anotherKeyIsRefusedAsChangedNamingBothFingerprints() async {
        let scans = Scans(["bastion": [Self.other]])
        do {
            _ = try await HostKeyResolver.resolve(tunnel(pin: Self.offered), knownHosts: nil, scanner: scans.scanner)
            Issue.record("resolved")
        } catch {
            #expect(error.kind == .hostKeyChanged)
            #expect(error.message.contains(Self.offered.fingerprint!) && error.message.contains(Self.other.fingerprint!))
        }
    }

    @Test func aHostThatDoesNotAnswerIsUnknownAndAHopsBastionSaysWhy() async {
        let scans = Scans(["jump": [Self.offered]])
        do {
            _ = try await HostKeyResolver.resolve(tunnel(pin: Self.other, jumpPin: Self.offered), knownHosts: nil, scanner: scans.scanner)
            Issue.record("resolved")
        } catch {
            #expect(error.kind == .hostKeyUnknown)
            #expect(error.message.contains("warren-db (bastion port 22)") && error.message.contains("pinned by its full key"))
        }
        #expect(scans.asked.withLock { $0 } == ["jump", "bastion"], "hops first, in order")
    }
}
