import Foundation
import Testing
@testable import WarrenCore

/// Login methods: what each renders into ssh_config, and the askpass helper.
@Suite struct LoginMethodRenderingTests {
    func render(_ login: LoginMethod, identityFile: String = "/keys/id") throws -> RenderedTunnel {
        let renderer = try shippedRenderer()
        let tunnel = TunnelConfig(
            name: "db", endpoint: SSHEndpoint(host: "bastion", identityFile: identityFile, login: login),
            localForwards: [Forward(kind: .local, listen: .tcp(host: "127.0.0.1", port: 15432), target: .tcp(host: "db", port: 5432))])
        return renderer.render(tunnel, configFile: "/etc/warren/warren.toml", directory: "/state/tunnels/db")
    }

    @Test func aKeyAloneKeepsBatchModeAndNoAskpass() throws {
        let rendered = try render(LoginMethod())
        #expect(rendered.sshConfig.contains("BatchMode yes") && rendered.sshConfig.contains("PasswordAuthentication no"))
        #expect(rendered.askpass == nil)
    }

    @Test func aPasswordTurnsBatchModeOffAndAsksThroughTheHelper() throws {
        let rendered = try render(LoginMethod(passwordFile: "/etc/warren/pw"), identityFile: "")
        #expect(rendered.sshConfig.contains("BatchMode no") && rendered.sshConfig.contains("PasswordAuthentication yes"))
        #expect(rendered.sshConfig.contains("NumberOfPasswordPrompts 1") && !rendered.sshConfig.contains("IdentityFile"))
        #expect(rendered.askpass?.contains("*password*) exec '/usr/bin/warren' askpass-secret -- '/etc/warren/pw' ;;") == true)
    }

    @Test func anAgentAndACertificateAreNamed() throws {
        let rendered = try render(LoginMethod(identityAgent: "/run/agent.sock", certificateFile: "/keys/id-cert.pub"))
        #expect(rendered.sshConfig.contains("IdentityAgent /run/agent.sock"))
        #expect(rendered.sshConfig.contains("CertificateFile /keys/id-cert.pub"))
        #expect(rendered.sshConfig.contains("BatchMode yes"))
    }

    @Test func certificateTextIsRead() {
        let text = """
            id-cert.pub:
                    Type: ssh-ed25519-cert-v01@openssh.com user certificate
                    Key ID: "warren-test"
                    Serial: 0
                    Valid: from 2026-11-30T20:03:00 to 2026-12-01T20:04:46
                    Principals: 
                            tunnel
                            ops
                    Critical Options: (none)
                    Extensions: 
                            permit-port-forwarding
            """
        let info = CertificateInfo.parse(text)
        #expect(info == CertificateInfo(keyID: "warren-test", principals: ["tunnel", "ops"], validFrom: "2026-11-30T20:03:00", validTo: "2026-12-01T20:04:46"))
        #expect(info?.summary == "principals tunnel, ops; valid until 2026-12-01T20:04:46")
    }

    @Test func encryptedKeysAreRecognised() throws {
        // ssh-keygen -t ed25519 -N '' and -N 'x': only the cipher name differs.
        let clear = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB\n-----END OPENSSH PRIVATE KEY-----\n"
        let locked = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABA=\n-----END OPENSSH PRIVATE KEY-----\n"
        #expect(PrivateKeyFile.isEncrypted(clear) == false)
        #expect(PrivateKeyFile.isEncrypted(locked) == true)
        #expect(PrivateKeyFile.isEncrypted("not a key") == nil)
    }
}
