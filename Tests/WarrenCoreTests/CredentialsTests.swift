import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// `certificate_command` and `key_max_age_days` in the config, when a
/// certificate is renewed, and what a freshly issued one must be.
@Suite struct CredentialsTests {
    func tunnel(_ lines: String, defaults: String = "") -> String {
        substitute("""
            [defaults]
            \(defaults)
            [tunnels.db]
            identity_file = "@KEY@"
            host = "b"
            host_key = "\(ConfigCases.hostKey)"
            local_forward = "1:a:2"
            \(lines)
            """)
    }

    func issues(_ text: String) -> [ConfigIssue] {
        do {
            _ = try makeLoader().load(text: text, file: "/etc/warren/warren.toml")
            return []
        } catch {
            return error.issues
        }
    }

    @Test func certificateCommandIsAnArgvAndTheCertificateGoesBesideTheKey() throws {
        let text = tunnel(#"certificate_command = ["vault", "write", "-field=signed_key", "ssh/sign/role", "public_key=@{public_key}"]"#)
        let login = try makeLoader().load(text: text, file: "f").tunnels[0].endpoint.login
        #expect(login.certificateCommand == ["vault", "write", "-field=signed_key", "ssh/sign/role", "public_key=@{public_key}"])
        // It need not exist yet: warren writes it.
        #expect(login.certificateFile == "/keys/id-cert.pub")
        #expect(LoginMethod.certificateArgv(login.certificateCommand!, publicKey: "/keys/id.pub").last == "public_key=@/keys/id.pub")
    }

    @Test func certificateCommandWithAnExplicitFileWritesThere() throws {
        let text = tunnel(#"certificate_command = ["/usr/local/bin/sign", "{public_key}"]"# + "\ncertificate_file = \"/run/db.cert\"")
        let login = try makeLoader().load(text: text, file: "f").tunnels[0].endpoint.login
        #expect(login.certificateFile == "/run/db.cert")
    }

    @Test func certificateCommandIsInherited() throws {
        let text = tunnel("", defaults: #"certificate_command = ["sign", "{public_key}"]"#)
        let login = try makeLoader().load(text: text, file: "f").tunnels[0].endpoint.login
        #expect(login.certificateCommand == ["sign", "{public_key}"])
    }

    @Test(arguments: [
        (#"certificate_command = "vault write ssh/sign/role public_key=@{public_key}""#, "must be a list"),
        (#"certificate_command = []"#, "must name a program"),
        (#"certificate_command = ["", "x"]"#, "must name a program"),
        (#"certificate_command = ["-x"]"#, "starts with \"-\""),
        (#"certificate_command = ["sign", "{pubkey}"]"#, "the only one is {public_key}"),
        (#"certificate_command = ["sign", "a\nb"]"#, "control character"),
        (#"certificate_command = ["vault write ssh/sign/role"]"#, "its own list item"),
        (#"certificate_command = ["sign", 3]"#, "must be a string"),
        ("key_max_age_days = 0", "out of range"),
        ("key_max_age_days = \"90\"", "must be an integer"),
    ])
    func badValuesNameTheFileAndKeyPath(_ line: String, _ message: String) {
        let found = issues(tunnel(line))
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.path.hasPrefix(line.hasPrefix("key") ? "tunnels.db.key_max_age_days" : "tunnels.db.certificate_command") == true, "\(found)")
        #expect(found.first?.message.contains(message) == true, "\(found)")
        do {
            _ = try makeLoader().load(text: tunnel(line), file: "/etc/warren/warren.toml")
        } catch {
            #expect(error.description.contains("/etc/warren/warren.toml"), "\(error.description)")
        }
    }

    @Test func certificateCommandNeedsAKeyFile() {
        let text = substitute("""
            [tunnels.db]
            identity_agent = "/run/agent.sock"
            certificate_command = ["sign", "{public_key}"]
            host = "b"
            host_key = "\(ConfigCases.hostKey)"
            local_forward = "1:a:2"
            """)
        let found = issues(text)
        #expect(found.map(\.path) == ["tunnels.db.certificate_command"], "\(found)")
        #expect(found.first?.message.contains("needs a key file") == true)
    }

    @Test func keyMaxAgeDaysIsInherited() throws {
        let config = try makeLoader().load(text: tunnel("", defaults: "key_max_age_days = 90"), file: "f")
        #expect(config.tunnels[0].keyMaxAgeDays == 90)
        let own = try makeLoader().load(text: tunnel("key_max_age_days = 30", defaults: "key_max_age_days = 90"), file: "f")
        #expect(own.tunnels[0].keyMaxAgeDays == 30)
    }

    // MARK: - Renewal timing

    @Test func renewsAtTwoThirdsOfTheLifetime() {
        #expect(CertificateRenewal.renewalTime(validFrom: 1000, validTo: 1060, obtained: 1010) == 1040)
        // A one-hour certificate backdated by 30 s (as Vault does) renews 20 minutes before its end.
        #expect(abs(CertificateRenewal.renewalTime(validFrom: -30, validTo: 3600, obtained: 0)! - 2390) < 1e-6)
        // No start: counted from when warren got it.
        #expect(CertificateRenewal.renewalTime(validFrom: nil, validTo: 90, obtained: 0) == 60)
        #expect(CertificateRenewal.renewalTime(validFrom: 0, validTo: nil, obtained: 0) == nil, "valid forever: never renewed")
    }

    @Test func aFailedRenewalIsRetriedSoonerThanTheCertificateEnds() {
        // Far from the end: 5 s, 10 s, 20 s ... up to 5 minutes.
        #expect(CertificateRenewal.retryTime(failures: 1, now: 0, validTo: 100_000) == 5)
        #expect(CertificateRenewal.retryTime(failures: 3, now: 0, validTo: 100_000) == 20)
        #expect(CertificateRenewal.retryTime(failures: 30, now: 0, validTo: 100_000) == 300)
        // 20 s left: at least four more tries before the end.
        #expect(CertificateRenewal.retryTime(failures: 4, now: 0, validTo: 20) == 5)
        #expect(CertificateRenewal.retryTime(failures: 1, now: 0, validTo: 2) == 1)
        // Already expired: the doubling alone.
        #expect(CertificateRenewal.retryTime(failures: 2, now: 50, validTo: 20) == 60)
    }

    @Test func validityAsSSHDJudgesIt() {
        #expect(CertificateRenewal.validity(from: 10, to: 20, at: 15) == .valid)
        #expect(CertificateRenewal.validity(from: 10, to: 20, at: 5) == .notYetValid(from: 10))
        #expect(CertificateRenewal.validity(from: 10, to: 20, at: 20) == .expired(at: 20))
        #expect(CertificateRenewal.validity(from: nil, to: nil, at: 1e12) == .valid)
    }

    @Test func aFreshCertificateMustFitTheKeyTheUserAndTheClock() {
        var info = CertificateInfo(principals: ["tunnel"], validFrom: "a", validTo: "b")
        info.publicKeyFingerprint = "SHA256:key"
        let ok = CertificateRenewal.rejection(info, validFrom: 0, validTo: 60, user: "tunnel", keyFingerprint: "SHA256:key", now: 1)
        #expect(ok == nil)
        #expect(CertificateRenewal.rejection(info, validFrom: 0, validTo: 60, user: "tunnel", keyFingerprint: "SHA256:other", now: 1)?.contains("not this tunnel's key") == true)
        #expect(CertificateRenewal.rejection(info, validFrom: 0, validTo: 60, user: "root", keyFingerprint: nil, now: 1)?.contains("does not name the login user root") == true)
        #expect(CertificateRenewal.rejection(info, validFrom: 0, validTo: 60, user: "tunnel", keyFingerprint: nil, now: 61)?.contains("expired") == true)
        #expect(CertificateRenewal.rejection(info, validFrom: 10, validTo: 60, user: "tunnel", keyFingerprint: nil, now: 1)?.contains("not valid yet") == true)
        info.isUserCertificate = false
        #expect(CertificateRenewal.rejection(info, validFrom: 0, validTo: 60, user: "tunnel", keyFingerprint: nil, now: 1)?.contains("host certificate") == true)
    }

    /// Recorded from `ssh-keygen -L -f` (OpenSSH 9.2) on a certificate `ssh-keygen -s` made.
    @Test func readsTheCertifiedKeyAndTheType() throws {
        let text = """
            user-cert.pub:
                    Type: ssh-ed25519-cert-v01@openssh.com user certificate
                    Public key: ED25519-CERT SHA256:ufMQPAcuNdFkTTR9BD/RFXc9tjGrSp9hUsZx6ZfWsZk
                    Signing CA: ED25519 SHA256:M8ibokIdpG8Nx/6S+EVwCue4KFCD1HLYCYyc4gUF9eQ (using ssh-ed25519)
                    Key ID: "t"
                    Serial: 0
                    Valid: from 2026-12-07T22:20:09 to 2026-12-07T23:20:09
                    Principals: 
                            tunnel
                    Critical Options: (none)
                    Extensions: 
                            permit-port-forwarding
            """
        let info = try #require(CertificateInfo.parse(text))
        #expect(info.isUserCertificate)
        #expect(info.publicKeyFingerprint == "SHA256:ufMQPAcuNdFkTTR9BD/RFXc9tjGrSp9hUsZx6ZfWsZk")
        #expect(info.principals == ["tunnel"])
        #expect(info.validTo == "2026-12-07T23:20:09")
    }
}
