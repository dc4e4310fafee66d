import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// `include = ["tunnels.d/*.toml"]`: one file per tunnel, as provisioning tools
/// write them, re-read on SIGHUP, with `[defaults]` naming the shared bastion.
@Suite(.serialized) struct IncludeTests {
    func mainConfig(_ lab: Lab) -> String {
        """
        include = ["tunnels.d/*.toml"]

        [defaults]
        host = "127.0.0.1"
        port = \(lab.sshd.port)
        user = "\(lab.sshd.user)"
        identity_file = "\(lab.sshd.clientKeyPath)"
        host_key = "\(SSHKeygen.keyWithoutComment(lab.sshd.hostKeyLine))"
        connect_timeout = 3
        backoff_min = 0.2
        backoff_max = 2
        probe_interval = 1
        """
    }

    func tunnelFile(_ name: String, _ spec: String) -> String {
        "# written by provisioning\n[tunnels.\(name)]\nlocal_forward = [\"\(spec)\"]\n"
    }

    @Test func sighupPicksUpANewFileAndADuplicateNamesBothFiles() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let a = try lab.forward(), b = try lab.forward()
        try FileManager.default.createDirectory(atPath: lab.directory.appending("tunnels.d"), withIntermediateDirectories: true)
        _ = try lab.directory.write(tunnelFile("a", a.spec), to: "tunnels.d/a.toml")
        let warren = try lab.startSupervisor(config: mainConfig(lab))
        defer { warren.stop() }
        try require(warren.waitForState("a", .up), "a up from tunnels.d/a.toml", warren)
        let pidA = warren.sshPID("a")

        _ = try lab.directory.write(tunnelFile("b", b.spec), to: "tunnels.d/b.toml")
        warren.process.signal(SIGHUP)
        try require(warren.waitForState("b", .up), "b added by a new file and SIGHUP", warren)
        #expect(warren.sshPID("a") == pidA, "a unchanged")
        #expect(try TCPClient.echo(port: b.port))

        // A second definition of b in another file: refused with both places, b keeps running.
        let dup = try lab.directory.write("\n" + tunnelFile("b", a.spec), to: "tunnels.d/c.toml")
        warren.process.signal(SIGHUP)
        let first = lab.directory.appending("tunnels.d/b.toml")
        #expect(waitUntil(timeout: .seconds(10)) { warren.logText().contains("is defined twice: at \(first):2 and at \(dup):3") })
        #expect(warren.tunnel("b")?.state == .up)

        let validate = try await CommandRunner.warren(["validate", "--config", warren.configPath])
        #expect(validate.status == 78)
        #expect(validate.stderr.contains("\(dup): tunnels.b: is defined twice"), "\(validate)")
    }
}
