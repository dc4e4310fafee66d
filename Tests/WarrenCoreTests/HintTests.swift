import Testing
import WarrenCore

/// Hints name the real values: the tunnel, the failing host (a jump hop by its
/// number), the user, local ports and targets.
@Suite struct HintTests {
    static let tunnel = TunnelConfig(
        name: "warehouse",
        endpoint: SSHEndpoint(host: "bastion.example.com", port: 2222, user: "tunnel", identityFile: "/etc/warren/id_ed25519"),
        jumps: [SSHEndpoint(host: "jump.example.com", port: 22, user: "hop", identityFile: "/etc/warren/id_ed25519")],
        localForwards: [
            Forward(kind: .local, listen: .tcp(host: "127.0.0.1", port: 15432), target: .tcp(host: "db.internal", port: 5432)),
            Forward(kind: .local, listen: .tcp(host: "127.0.0.1", port: 15433), target: .tcp(host: "dw.internal", port: 5439)),
        ],
        remoteForwards: [Forward(kind: .remote, listen: .tcp(host: nil, port: 9000), target: .tcp(host: "localhost", port: 9000))])

    static let placeholders = ["TUNNEL", "HOST", "PORT", "NAME", "USER", "IDENTITY_FILE", "TARGET"]

    @Test(arguments: FailureKind.allCases)
    func everyHintIsFilledIn(kind: FailureKind) {
        let hint = kind.hint(in: HintContext(tunnel: Self.tunnel, defaultUser: "ops"))
        for placeholder in Self.placeholders {
            #expect(!hint.contains(placeholder), "\(kind.rawValue): \(hint)")
        }
        #expect(!hint.isEmpty)
    }

    @Test(arguments: CheckKind.checkOnly)
    func everyCheckHintIsFilledIn(kind: CheckKind) {
        let hint = kind.hint(in: HintContext(tunnel: Self.tunnel, defaultUser: "ops"))
        for placeholder in Self.placeholders { #expect(!hint.contains(placeholder), "\(kind.rawValue): \(hint)") }
    }

    @Test func commandsCarryTheValues() {
        let context = HintContext(tunnel: Self.tunnel, defaultUser: "ops")
        #expect(FailureKind.targetUnreachable.hint(in: context).contains("`nc -z db.internal 5432; nc -z dw.internal 5439` on the bastion (bastion.example.com)"))
        #expect(FailureKind.localPortInUse.hint(in: context).contains("ss -ltnp 'sport = :15432 or sport = :15433'"))
        #expect(FailureKind.authFailed.hint(in: context).contains("`warren authorized-key warehouse`"))
        #expect(FailureKind.authFailed.hint(in: context).contains("the bastion refused the key (tunnel@bastion.example.com port 2222)"))
        #expect(FailureKind.hostKeyUnknown.hint(in: context).contains("`warren hostkey warehouse`"))
    }

    @Test func theForwardTheMessageNamesIsTheOneInTheHint() {
        let bind = HintContext(tunnel: Self.tunnel, message: "bind [127.0.0.1]:15433: Address already in use", defaultUser: "ops")
        #expect(FailureKind.localPortInUse.hint(in: bind).contains("ss -ltnp 'sport = :15433')"))
        let probe = HintContext(tunnel: Self.tunnel, message: "a connection through 127.0.0.1:15432 was accepted and then closed", defaultUser: "ops")
        #expect(FailureKind.targetUnreachable.hint(in: probe).contains("`nc -z db.internal 5432`"))
    }

    @Test(arguments: [
        ("ssh: connect to host jump.example.com port 22: Connection refused", FailureKind.connectionRefused, "jump hop 1 's SSH port (jump.example.com port 22)"),
        ("hop@jump.example.com: Permission denied (publickey).", .authFailed, "jump hop 1 refused the key (hop@jump.example.com port 22)"),
        ("Host key for warren-warehouse-jump1 has changed and you have requested strict checking.", .hostKeyChanged, "jump hop 1's host key differs"),
        ("ssh: connect to host bastion.example.com port 2222: Connection refused", .connectionRefused, "the bastion's SSH port (bastion.example.com port 2222)"),
        ("Host key for warren-warehouse has changed and you have requested strict checking.", .hostKeyChanged, "the bastion's host key differs"),
    ])
    func aFailureAtAJumpHopNamesTheHop(message: String, kind: FailureKind, fragment: String) {
        let hint = kind.hint(in: HintContext(tunnel: Self.tunnel, message: message, defaultUser: "ops"))
        #expect(hint.contains(fragment.replacingOccurrences(of: " 's", with: "'s")), "\(hint)")
    }

    @Test func tunnelErrorTakesTheContext() {
        let error = TunnelError(kind: .authFailed, message: "tunnel@bastion.example.com: Permission denied (publickey).", tunnel: Self.tunnel, defaultUser: "ops")
        #expect(error.hint.contains("~tunnel/.ssh/authorized_keys"))
        #expect(TunnelError(kind: .authFailed, message: "x").hint == FailureKind.authFailed.hint)
    }
}
