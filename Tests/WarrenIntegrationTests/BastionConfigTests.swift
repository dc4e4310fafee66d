import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// `warren bastion-config`: the lines and Match blocks it prints, installed on
/// two real sshds (a jump hop and the bastion), are accepted by `sshd -t` and
/// let the tunnel through, each host with its own line.
@Suite(.serialized) struct BastionConfigTests {
    /// The authorized_keys line and the Match block printed for the host whose section starts with `heading`.
    func section(_ text: String, _ heading: String) throws -> (line: String, match: [String]) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try #require(lines.firstIndex { $0.hasPrefix(heading) }, "no \(heading) in:\n\(text)")
        let rest = lines[start...]
        let keyComment = try #require(rest.firstIndex { $0.hasPrefix("# Append to ~") && $0.contains("authorized_keys") })
        let matchStart = try #require(rest.firstIndex { $0.hasPrefix("Match User ") })
        let body = rest[(matchStart + 1)...].prefix { $0.hasPrefix("    ") }
        return (lines[keyComment + 1], [lines[matchStart]] + body)
    }

    @Test func hopAndBastionConfigsAreAcceptedBySshdAndCarryTheTunnel() async throws {
        let lab = try Lab(prefix: "wbc-", sshd: nil)
        defer { lab.stop() }
        let target = try lab.startTarget()
        let key = lab.directory.appending("id_ed25519")
        _ = try SSHKeygen.generate(at: key)
        let hopPort = try FreePort.find(), bastionPort = try FreePort.find(), localPort = try FreePort.find()
        let user = String(cString: getpwuid(geteuid()).pointee.pw_name)
        func config(hopKey: String?, bastionKey: String?) -> String {
            """
            state_dir = "\(lab.stateDir)"
            [tunnels.db]
            host = "127.0.0.1"
            port = \(bastionPort)
            user = "\(user)"
            identity_file = "\(key)"
            connect_timeout = 3
            local_forward = ["127.0.0.1:\(localPort):127.0.0.1:\(target.port)"]
            \(bastionKey.map { "host_key = \"\($0)\"" } ?? "")
            [[tunnels.db.jump]]
            host = "127.0.0.1"
            port = \(hopPort)
            \(hopKey.map { "host_key = \"\($0)\"" } ?? "")
            """
        }
        try lab.directory.write(config(hopKey: nil, bastionKey: nil), to: "warren.toml")
        let printed = try await lab.warren(["bastion-config", "db"])
        try #require(printed.status == 0, "\(printed)")
        let hop = try section(printed.stdout, "## jump hop 1:")
        let bastion = try section(printed.stdout, "## bastion:")
        #expect(hop.line.contains("permitopen=\"127.0.0.1:\(bastionPort)\""), "the hop may open only the bastion's SSH port: \(hop.line)")
        #expect(bastion.line.contains("permitopen=\"127.0.0.1:\(target.port)\""))
        #expect(hop.match.contains("    AllowTcpForwarding local") && hop.match.contains("    PermitOpen 127.0.0.1:\(bastionPort)"))
        #expect(bastion.match.contains("    PermitOpen 127.0.0.1:\(target.port)") && bastion.match.contains("    PermitListen none"))
        #expect(printed.stdout.contains("This machine reaches 127.0.0.1 from 127.0.0.1."), "\(printed.stdout)")

        // SSHDServer.start runs `sshd -t -f` on the config with the block at its end, and fails loudly if refused.
        let hopSSHD = try lab.startSSHD(SSHDServer.Options(trailingConfig: hop.match, port: hopPort))
        let bastionSSHD = try lab.startSSHD(SSHDServer.Options(trailingConfig: bastion.match, port: bastionPort))
        let check = try await CommandRunner.run("/usr/sbin/sshd", ["-t", "-f", bastionSSHD.configPath])
        #expect(check.status == 0, "\(check)")
        try hopSSHD.setAuthorizedKeys([hop.line])
        try bastionSSHD.setAuthorizedKeys([bastion.line])

        // Each host has only its own line.
        try lab.directory.write(config(hopKey: hopSSHD.hostKeyLine, bastionKey: bastionSSHD.hostKeyLine), to: "warren.toml")
        let warren = try lab.startSupervisor()
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "up through the hop with the generated configs", warren)
        #expect(try TCPClient.echo(port: localPort))
    }
}
