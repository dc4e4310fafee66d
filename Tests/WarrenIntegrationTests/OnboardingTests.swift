import Foundation
import Testing
import WarrenCore
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The onboarding flow with the real binary and a real sshd: keygen, the
/// authorized_keys line, host keys and their pins.
@Suite(.serialized) struct OnboardingTests {
    /// Writes the lab's config: tunnel `db` points at `sshd` and uses warren's own key.
    func writeTunnel(in lab: Lab, for sshd: SSHDServer, forward: String, tunnel extra: String = "") throws {
        try lab.writeConfig("""
            [tunnels.db]
            host = "127.0.0.1"
            port = \(sshd.port)
            user = "\(sshd.user)"
            connect_timeout = 3
            local_forward = "\(forward)"
            \(extra)
            """)
    }

    /// `ssh -F <generated config> ARGS`, run to its end.
    func ssh(_ lab: Lab, _ arguments: [String], log: String) throws -> (status: Int32, output: String) {
        try SpawnedProcess.run("/usr/bin/ssh", ["-F", lab.tunnelFile("db", "ssh_config")] + arguments,
                               log: lab.directory.appending(log), timeout: .seconds(20))
    }

    // MARK: - keygen

    @Test func keygenWritesA0600KeyAndNeverOverwritesIt() async throws {
        let lab = try Lab(prefix: "ws-", sshd: nil)
        defer { lab.stop() }
        try lab.writeConfig("")
        let key = "\(lab.stateDir)/keys/id_ed25519"
        let first = try await lab.warren(["keygen"])
        #expect(first.status == 0, "\(first)")
        let pub = try String(contentsOfFile: key + ".pub", encoding: .utf8)
        #expect(first.stdout == pub, "stdout is the public key line")
        #expect(pub.hasPrefix("ssh-ed25519 AAAA"))
        #expect(Lab.mode(key) == 0o600 && Lab.mode(key + ".pub") == 0o644)
        #expect(Lab.mode(lab.stateDir) == 0o700 && Lab.mode("\(lab.stateDir)/keys") == 0o700)
        let check = try await CommandRunner.run("/usr/bin/ssh-keygen", ["-y", "-f", key])
        #expect(check.status == 0 && pub.hasPrefix(check.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "the pair belongs together")

        let private1 = try String(contentsOfFile: key, encoding: .utf8)
        let again = try await lab.warren(["keygen"])
        #expect(again.status == 1)
        #expect(again.stderr.contains("\(key) already exists") && again.stderr.contains("--force"))
        #expect(try String(contentsOfFile: key, encoding: .utf8) == private1, "the key is untouched")

        let forced = try await lab.warren(["keygen", "--force"])
        #expect(forced.status == 0 && forced.stderr.contains("Replaced \(key)"))
        #expect(try String(contentsOfFile: key, encoding: .utf8) != private1)
        #expect(Lab.mode(key) == 0o600)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "\(lab.stateDir)/keys").filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "no temporary files remain: \(leftovers)")
    }

    @Test func keygenMakesRSAKeysOfTheAskedSizeAndChecksItsOptions() async throws {
        let lab = try Lab(prefix: "ws-", sshd: nil)
        defer { lab.stop() }
        try lab.writeConfig("")
        let rsa = try await lab.warren(["keygen", "--type", "rsa", "--bits", "2048", "--tunnel", "db"])
        #expect(rsa.status == 0, "\(rsa)")
        let key = "\(lab.stateDir)/keys/db/id_rsa"
        let size = try await CommandRunner.run("/usr/bin/ssh-keygen", ["-lf", key])
        #expect(size.stdout.hasPrefix("2048 SHA256:") && size.stdout.hasSuffix("(RSA)\n"), "\(size)")
        #expect(Lab.mode("\(lab.stateDir)/keys/db") == 0o700)

        for bad in [["--bits", "4096"], ["--type", "dsa"], ["--type", "rsa", "--bits", "1024"], ["--tunnel", "../x"]] {
            let result = try await lab.warren(["keygen"] + bad)
            #expect(result.status == 64, "\(bad): \(result)")
        }
    }

    @Test func aTunnelWithoutIdentityFileUsesTheGeneratedKey() async throws {
        let lab = try Lab(prefix: "ws-", sshd: nil)
        defer { lab.stop() }
        try lab.writeConfig("[tunnels.db]\nhost = \"b\"\nhost_key = \"\(ConfigCases.hostKey)\"\nlocal_forward = \"15432:db:5432\"\n[tunnels.other]\nhost = \"b\"\nhost_key = \"\(ConfigCases.hostKey)\"\nlocal_forward = \"15433:db:5432\"")
        let before = try await lab.warren(["validate"])
        #expect(before.status == 78 && before.stderr.contains("run `warren keygen`"))

        #expect(try await lab.warren(["keygen"]).status == 0)
        #expect(try await lab.warren(["validate"]).status == 0)
        let shared = try await lab.warren(["render", "other"])
        #expect(shared.stdout.contains("IdentityFile \(lab.stateDir)/keys/id_ed25519\n"))

        let own = try await lab.warren(["keygen", "--tunnel", "db"])
        #expect(own.status == 0 && own.stderr.contains("Tunnel db uses it"), "\(own)")
        #expect(try await lab.warren(["render", "db"]).stdout.contains("IdentityFile \(lab.stateDir)/keys/db/id_ed25519\n"))
        #expect(try await lab.warren(["render", "other"]).stdout.contains("IdentityFile \(lab.stateDir)/keys/id_ed25519\n"))
    }

    // MARK: - authorized-key

    @Test func theAuthorizedKeyLineAllowsTheForwardAndNothingElse() async throws {
        let lab = try Lab(prefix: "ws-", sshd: nil)
        defer { lab.stop() }
        let allowed = try lab.startTarget()
        let other = try lab.startTarget()
        let sshd = try lab.startSSHD()
        let localPort = try FreePort.find()
        try writeTunnel(
            in: lab, for: sshd, forward: "127.0.0.1:\(localPort):127.0.0.1:\(allowed.port)",
            tunnel: "host_key = \"\(sshd.hostKeyLine)\"\nallowed_from = \"127.0.0.1\"")
        #expect(try await lab.warren(["keygen"]).status == 0)
        let printed = try await lab.warren(["authorized-key", "db", "--line-only"])
        #expect(printed.status == 0, "\(printed)")
        let line = printed.stdout.trimmingCharacters(in: .newlines)
        #expect(line.hasPrefix("from=\"127.0.0.1\",restrict,port-forwarding,command=\"/bin/false\",permitopen=\"127.0.0.1:\(allowed.port)\",permitlisten=\"none.invalid:1\" ssh-ed25519 "))
        let full = try await lab.warren(["authorized-key", "db"])
        #expect(full.stdout.contains("\n\(line)\n") && full.stdout.contains("chmod 700") && full.stdout.contains("nc -z 127.0.0.1 \(allowed.port)"))

        try sshd.setAuthorizedKeys([line])
        #expect(try await lab.warren(["render", "db"]).status == 0)

        // The configured forward works.
        let tunnel = try SpawnedProcess.spawn("/usr/bin/ssh", ["-F", lab.tunnelFile("db", "ssh_config"), "-N", "warren-db"], log: lab.directory.appending("tunnel.log"))
        defer { tunnel.terminate() }
        #expect(FreePort.waitUntilListening(localPort, timeout: .seconds(20)), "\(tunnel.logText())\n\(sshd.logText().suffix(2000))")
        #expect(try TCPClient.echo(port: localPort))
        #expect(allowed.acceptedConnections == 1)

        // No shell, no command.
        let command = try ssh(lab, ["-o", "ClearAllForwardings=yes", "warren-db", "echo", "shell-ran"], log: "cmd.log")
        #expect(command.status == 1 && !command.output.contains("shell-ran"), "\(command)")
        let shell = try ssh(lab, ["-o", "ClearAllForwardings=yes", "-T", "warren-db"], log: "shell.log")
        #expect(shell.status == 1, "\(shell)")

        // No other host:port, not even the allowed target by another name.
        for destination in ["127.0.0.1:\(other.port)", "localhost:\(allowed.port)"] {
            let stdio = try ssh(lab, ["-W", destination, "warren-db"], log: "w.log")
            #expect(stdio.status == 255 && stdio.output.contains("administratively prohibited"), "\(destination): \(stdio)")
        }
        #expect(other.acceptedConnections == 0 && allowed.acceptedConnections == 1)
        // No remote forward. (ClearAllForwardings would drop the -R too, so the
        // tunnel makes room for the config's own LocalForward instead.)
        tunnel.terminate()
        let remote = try ssh(lab, ["-N", "-R", "127.0.0.1:\(try FreePort.find()):127.0.0.1:\(allowed.port)", "warren-db"], log: "r.log")
        #expect(remote.status == 255 && remote.output.contains("remote port forwarding failed"), "\(remote)")

        // from= is enforced: the same line for another source address is refused.
        try sshd.setAuthorizedKeys([line.replacingOccurrences(of: "from=\"127.0.0.1\"", with: "from=\"192.0.2.1\"")])
        let elsewhere = try ssh(lab, ["-o", "ClearAllForwardings=yes", "-W", "127.0.0.1:\(allowed.port)", "warren-db"], log: "from.log")
        #expect(elsewhere.status == 255 && elsewhere.output.contains("Permission denied (publickey)"), "\(elsewhere)")
    }

    // MARK: - hostkey and pins

    @Test func hostkeyPrintsTheFingerprintsSSHKeygenPrints() async throws {
        let lab = try Lab(prefix: "ws-", sshd: nil)
        defer { lab.stop() }
        let sshd = try lab.startSSHD()
        try writeTunnel(in: lab, for: sshd, forward: "15432:db:5432", tunnel: "identity_file = \"\(sshd.clientKeyPath)\"")
        let result = try await lab.warren(["hostkey", "db"])
        #expect(result.status == 0, "\(result)")
        let keygen = try await CommandRunner.run("/usr/bin/ssh-keygen", ["-lf", sshd.hostKeyPath])
        let fields = keygen.stdout.split(separator: " ")
        let fingerprint = String(fields[1])
        #expect(fingerprint.hasPrefix("SHA256:"))
        #expect(result.stdout.contains("  \(fields[0]) \(fingerprint) \(fields.last!.trimmingCharacters(in: .newlines))\n"), "\(result.stdout)\nvs \(keygen.stdout)")
        #expect(result.stdout.contains("    host_key = \"\(sshd.hostKeyLine)\"\n"))
        #expect(result.stdout.contains("    host_key = \"\(fingerprint)\"\n"))
        #expect(result.stdout.contains("now: nothing pinned yet"))

        // A host that does not answer: exit 1, and says so.
        try lab.writeConfig("[tunnels.db]\nhost = \"127.0.0.1\"\nport = \(try FreePort.find())\nidentity_file = \"\(sshd.clientKeyPath)\"\nconnect_timeout = 2\nlocal_forward = \"15432:db:5432\"")
        let silent = try await lab.warren(["hostkey", "db"])
        #expect(silent.status == 1 && silent.stdout.contains("no key:"), "\(silent)")
    }

    @Test func fingerprintPinResolvesToTheRealKeyAndIsReusedWithoutTheNetwork() async throws {
        let lab = try Lab(prefix: "ws-", sshd: nil)
        defer { lab.stop() }
        let sshd = try lab.startSSHD()
        let fingerprint = try HostKey.parse(sshd.hostKeyLine).get().fingerprint!
        // A copy of the key: stopping sshd below removes its directory.
        let key = try lab.copyKey(sshd.clientKeyPath)
        try lab.writeConfig("""
            [tunnels.db]
            host = "127.0.0.1"
            port = \(sshd.port)
            user = "\(sshd.user)"
            identity_file = "\(key)"
            host_key = "\(fingerprint)"
            local_forward = "\(try FreePort.find()):127.0.0.1:9"
            """)
        let render = try await lab.warren(["render", "db"])
        #expect(render.status == 0, "\(render)")
        let knownHosts = try String(contentsOfFile: lab.tunnelFile("db", "known_hosts"), encoding: .utf8)
        #expect(knownHosts.contains("\nwarren-db \(sshd.hostKeyLine)\n"))
        let login = try ssh(lab, ["-o", "ClearAllForwardings=yes", "warren-db", "true"], log: "login.log")
        #expect(login.status == 0, "ssh trusts the resolved key: \(login)")
        #expect(try await lab.warren(["hostkey", "db"]).stdout.contains("now: the pinned key matches"))

        sshd.stop()
        let offline = try await lab.warren(["render", "db"])
        #expect(offline.status == 0, "the key already in known_hosts is reused, no scan: \(offline)")
        #expect(try String(contentsOfFile: lab.tunnelFile("db", "known_hosts"), encoding: .utf8) == knownHosts)
    }

    @Test func wrongFingerprintPinIsRefusedByRenderAndByTheSupervisor() async throws {
        let lab = try Lab(prefix: "ws-", sshd: nil)
        defer { lab.stop() }
        let sshd = try lab.startSSHD()
        let wrong = try HostKey.parse(ConfigCases.hostKey).get().fingerprint!
        let offered = try HostKey.parse(sshd.hostKeyLine).get().fingerprint!
        try writeTunnel(in: lab, for: sshd, forward: "\(try FreePort.find()):127.0.0.1:9", tunnel: "identity_file = \"\(sshd.clientKeyPath)\"\nhost_key = \"\(wrong)\"")
        let render = try await lab.warren(["render", "db"])
        #expect(render.status == 1, "\(render)")
        #expect(render.stderr.contains("host_key_changed") && render.stderr.contains(wrong) && render.stderr.contains(offered), "\(render.stderr)")
        #expect(!FileManager.default.fileExists(atPath: lab.tunnelFile("db", "known_hosts")), "nothing is written")

        let status = try await supervise(lab, until: { $0.tunnels.first?.lastError != nil })
        #expect(status?.tunnels.first?.state == .failed)
        #expect(status?.tunnels.first?.lastError?.kind == .hostKeyChanged)
        #expect(sshd.connectionProcesses.isEmpty, "no ssh logged in")

        let (result, report) = try await lab.doctor("db")
        #expect(result.status == 1 && report.failedNumbers == [6] && report.step(6)?.kind == "host_key_changed", "\(result.stdout)")
    }

    @Test func acceptNewPinsOnFirstUseAndKeepsThePinAcrossRestarts() async throws {
        let lab = try Lab(prefix: "ws-", sshd: nil)
        defer { lab.stop() }
        let target = try lab.startTarget()
        let sshd = try lab.startSSHD()
        try writeTunnel(
            in: lab, for: sshd, forward: "127.0.0.1:\(try FreePort.find()):127.0.0.1:\(target.port)",
            tunnel: "identity_file = \"\(sshd.clientKeyPath)\"\nhost_key_policy = \"accept-new\"")
        let knownHosts = lab.tunnelFile("db", "known_hosts")
        let pinned = "warren-db \(sshd.hostKeyLine)"

        let first = try await supervise(lab, until: { $0.tunnels.first?.state == .up })
        #expect(first?.tunnels.first?.state == .up)
        #expect(try String(contentsOfFile: knownHosts, encoding: .utf8).contains(pinned), "pinned on first use")

        let second = try await supervise(lab, until: { $0.tunnels.first?.state == .up })
        #expect(second?.tunnels.first?.state == .up)
        let text = try String(contentsOfFile: knownHosts, encoding: .utf8)
        #expect(text.components(separatedBy: "\nwarren-db ").count == 2 && text.contains(pinned), "kept, once: \(text)")

        try sshd.rotateHostKey()
        let third = try await supervise(lab, until: { $0.tunnels.first?.lastError != nil })
        #expect(third?.tunnels.first?.lastError?.kind == .hostKeyChanged, "\(String(describing: third))")
        #expect(try String(contentsOfFile: knownHosts, encoding: .utf8).contains(pinned), "the old pin stays; the new key is not trusted")
    }

    /// Runs `warren run` until status.json satisfies `condition` (or 20 s pass),
    /// stops it with SIGTERM and returns the last status read.
    func supervise(_ lab: Lab, until condition: (StatusReport) -> Bool) async throws -> StatusReport? {
        let run = try lab.startSupervisor()
        defer { _ = run.process.terminate(grace: .seconds(5)) }
        var last: StatusReport?
        let reached = waitUntil(timeout: .seconds(20), every: .milliseconds(50)) {
            guard let data = FileManager.default.contents(atPath: "\(lab.stateDir)/status.json"),
                  let report = try? JSONDecoder().decode(StatusReport.self, from: data), report.supervisorPid == run.process.pid else { return false }
            last = report
            return condition(report)
        }
        if !reached { Issue.record("status never satisfied the condition; warren run's log:\n\(run.logText())") }
        #expect(run.process.terminate(grace: .seconds(5)) == .exited(0), "warren run stops cleanly on SIGTERM")
        return last
    }
}
