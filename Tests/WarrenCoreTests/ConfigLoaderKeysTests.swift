import Testing
import WarrenCore
import WarrenTestSupport

/// How the config names keys: host keys by fingerprint, and the default identity
/// file that `warren keygen` writes.
@Suite struct ConfigLoaderKeysTests {
    static let fingerprint = "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"  // of ConfigCases.hostKey

    @Test func hostKeyTakesKeysAndFingerprintsTogether() throws {
        let text = substitute("""
            [tunnels.a]
            identity_file = "@KEY@"
            host = "b"
            host_key = ["\(ConfigCases.hostKey)", "\(Self.fingerprint)"]
            local_forward = "1:a:2"
            [[tunnels.a.jump]]
            host = "j"
            host_key = "\(Self.fingerprint)"
            """)
        let tunnel = try makeLoader().load(text: text, file: "f").tunnels[0]
        #expect(tunnel.endpoint.hostKeys.map(\.description) == [ConfigCases.hostKey])
        #expect(tunnel.endpoint.hostKeyFingerprints.map(\.description) == [Self.fingerprint])
        #expect(tunnel.endpoint.unresolvedFingerprints.isEmpty, "the pinned key already has that fingerprint")
        #expect(tunnel.jumps[0].hostKeys.isEmpty)
        #expect(tunnel.jumps[0].unresolvedFingerprints.map(\.description) == [Self.fingerprint])
    }

    @Test func badFingerprintNamesTheKeyPath() {
        let text = substitute("[tunnels.a]\nidentity_file = \"@KEY@\"\nhost = \"b\"\nhost_key = [\"\(ConfigCases.hostKey)\", \"SHA256:nope\"]\nlocal_forward = \"1:a:2\"")
        #expect(throws: ConfigError.self) { try makeLoader().load(text: text, file: "f") }
        do {
            _ = try makeLoader().load(text: text, file: "f")
        } catch {
            #expect(error.issues.map(\.path) == ["tunnels.a.host_key[1]"])
            #expect(error.issues[0].message.contains("not a SHA-256 fingerprint"))
        }
    }

    @Test(arguments: [
        (["/s/keys/a/id_ed25519", "/s/keys/id_ed25519"], "/s/keys/a/id_ed25519"),
        (["/s/keys/a/id_rsa", "/s/keys/id_ed25519"], "/s/keys/a/id_rsa"),
        (["/s/keys/b/id_ed25519", "/s/keys/id_rsa"], "/s/keys/id_rsa"),
        ([], "/s/keys/id_ed25519"),
    ])
    func defaultIdentityPrefersTheTunnelsOwnKey(_ existing: [String], _ expected: String) {
        let found = ConfigContext.defaultIdentityFile(stateDir: "/s", tunnel: "a", exists: { existing.contains($0) })
        #expect(found == expected)
        // What keygen writes is what the loader then finds.
        for type in KeyType.allCases {
            for owner in ["a", nil] as [String?] {
                let path = ConfigContext.keyPath(stateDir: "/s", tunnel: owner, type: type)
                #expect(ConfigContext.defaultIdentityFile(stateDir: "/s", tunnel: "a", exists: { $0 == path }) == path)
            }
        }
    }

    @Test func doctorLoadsAConfigWhoseKeyIsMissing() throws {
        let text = "[tunnels.a]\nhost = \"b\"\nidentity_file = \"/gone/key\"\nhost_key = \"\(ConfigCases.hostKey)\"\nlocal_forward = \"1:a:2\"\n[tunnels.b]\nhost = \"b\"\nhost_key = \"\(ConfigCases.hostKey)\"\nlocal_forward = \"2:a:2\""
        var loader = makeLoader(existing: [])
        #expect(throws: ConfigError.self) { try loader.load(text: text, file: "f") }
        loader.context.requireIdentityFiles = false
        let config = try loader.load(text: text, file: "f")
        #expect(config.tunnels.map(\.endpoint.identityFile) == ["/gone/key", "/var/lib/warren/keys/id_ed25519"])
    }

    @Test func stateDirOnlyReadsAnInvalidConfig() {
        let loader = makeLoader(existing: [])
        #expect(loader.stateDirOnly(text: "state_dir = \"/srv/w\"\n[tunnels.a]\nhost = 3") == "/srv/w")
        #expect(loader.stateDirOnly(text: "state_dir = \"rel\"") == "/etc/warren/rel")
        #expect(loader.stateDirOnly(text: "[broken") == "/var/lib/warren")
        #expect(makeLoader(stateDirOverride: "/cli").stateDirOnly(text: "state_dir = \"/srv/w\"") == "/cli")
    }

    @Test(arguments: [(KeyType.ed25519, 4096, false), (.rsa, 1024, false), (.rsa, 4096, true), (.rsa, 20000, false)])
    func bitsAreCheckedPerType(_ type: KeyType, _ bits: Int, _ ok: Bool) {
        #expect((type.bitsReason(bits) == nil) == ok)
        #expect(type.bitsReason(nil) == nil)
    }
}
