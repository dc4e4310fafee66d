import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// Every common way to log in, against a real sshd: an ssh-agent started by the
/// test, a user CA trusted with TrustedUserCAKeys, a local user with a
/// password, and a key protected by a passphrase.
@Suite(.serialized) struct LoginMethodTests {
    /// A tunnel `db` to `sshd` with `login` lines in place of identity_file.
    func tunnel(_ lab: Lab, port: Int, user: String? = nil, _ login: [String]) -> String {
        """
        [tunnels.db]
        host = "127.0.0.1"
        port = \(lab.sshd.port)
        user = "\(user ?? lab.sshd.user)"
        host_key = "\(SSHKeygen.keyWithoutComment(lab.sshd.hostKeyLine))"
        connect_timeout = 3
        backoff_min = 0.2
        backoff_max = 2
        probe_interval = 1
        local_forward = ["127.0.0.1:\(port):127.0.0.1:\(lab.target.port)"]
        \(login.joined(separator: "\n"))
        """
    }

    @Test func keysHeldByAnAgentStartedByTheTest() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let socket = lab.directory.appending("agent.sock")
        let agent = try lab.spawn("/usr/bin/ssh-agent", ["-D", "-a", socket], log: "agent.log")
        defer { agent.terminate() }
        #expect(waitUntil(timeout: .seconds(10)) { FileManager.default.fileExists(atPath: socket) })
        let add = try await CommandRunner.run("/usr/bin/ssh-add", [lab.sshd.clientKeyPath], environment: ["SSH_AUTH_SOCK": socket])
        try #require(add.status == 0, "\(add)")

        // By path: doctor lists the agent's key and logs in with it.
        let local = try lab.forward()
        try lab.directory.write(tunnel(lab, port: local.port, ["identity_agent = \"\(socket)\""]), to: "warren.toml")
        let (result, report) = try await lab.doctor("db", ["--state-dir", lab.stateDir])
        #expect(result.status == 0, "\(result)")
        #expect(report.step(2)?.evidence.contains { $0.contains("agent at \(socket) holds 1 key") } == true, "\(result)")

        // The environment's agent (identity_agent = "SSH_AUTH_SOCK") under `warren run`.
        let config = tunnel(lab, port: local.port, ["identity_agent = \"SSH_AUTH_SOCK\""])
        var environment = ProcessInfo.processInfo.environment
        environment["SSH_AUTH_SOCK"] = socket
        let warren = try lab.startSupervisor(config: config, environment: environment)
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "up with the agent's key", warren)
        #expect(try TCPClient.echo(port: local.port))
        let rendered = try String(contentsOfFile: warren.stateDir + "/tunnels/db/ssh_config", encoding: .utf8)
        #expect(rendered.contains("IdentityAgent SSH_AUTH_SOCK") && rendered.contains("IdentitiesOnly no") && !rendered.contains("IdentityFile"))
    }

    @Test func userCertificateSignedByATrustedCA() async throws {
        let lab = try Lab(sshd: nil)
        defer { lab.stop() }
        let work = try lab.makeDirectory(prefix: "wca-")
        let caPub = try SSHKeygen.generate(at: work.appending("ca"))
        _ = try work.write(caPub + "\n", to: "ca.pub.trusted", mode: 0o644)
        try lab.startSSHD(SSHDServer.Options(extraConfig: ["TrustedUserCAKeys \(work.appending("ca.pub.trusted"))"]))
        try lab.startTarget()
        // A key that is in no authorized_keys: only the certificate lets it in.
        let key = lab.directory.appending("certified")
        _ = try SSHKeygen.generate(at: key)
        let sign = try await CommandRunner.run(
            SSHKeygen.path, ["-q", "-s", work.appending("ca"), "-I", "warren-test", "-n", lab.sshd.user, "-V", "-1h:+3d", key + ".pub"])
        try #require(sign.status == 0, "\(sign)")
        // Not beside the key as KEY-cert.pub, where ssh would find it by itself.
        let certificate = lab.directory.appending("issued.cert")
        try FileManager.default.moveItem(atPath: key + "-cert.pub", toPath: certificate)
        let local = try lab.forward()
        let login = ["identity_file = \"\(key)\"", "certificate_file = \"\(certificate)\""]
        try lab.directory.write(tunnel(lab, port: local.port, login), to: "warren.toml")

        let (result, report) = try await lab.doctor("db", ["--state-dir", lab.stateDir])
        #expect(result.status == 0, "\(result)")
        #expect(report.step(2)?.evidence.contains { $0.contains("principals \(lab.sshd.user); valid until ") } == true, "\(result)")

        // Without the certificate the same key is refused.
        try lab.directory.write(tunnel(lab, port: local.port, [login[0]]), to: "warren.toml")
        let (refused, refusedReport) = try await lab.doctor("db", ["--state-dir", lab.stateDir])
        #expect(refused.status == 1)
        #expect(refusedReport.failedSteps.first?.kind == "auth_failed")

        let warren = try lab.startSupervisor(
            config: tunnel(lab, port: local.port, login),
            arguments: ["--metrics-file", lab.directory.appending("metrics.prom")])
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "up with the certificate", warren)
        #expect(try TCPClient.echo(port: local.port))
        // Read from the certificate at start (ssh-keygen -L), written with the next metrics update.
        var metrics = ""
        let exported = waitUntil(timeout: .seconds(10)) {
            metrics = (try? String(contentsOfFile: lab.directory.appending("metrics.prom"), encoding: .utf8)) ?? ""
            return metrics.contains("warren_tunnel_certificate_expiry_timestamp_seconds{tunnel=\"db\"} ")
        }
        #expect(exported, "\(metrics)")

        // Three days left: check warns, naming principals and expiry.
        let check = try await CommandRunner.warren(["check", "--config", warren.configPath, "--state-dir", warren.stateDir])
        #expect(check.status == 1, "\(check)")
        #expect(check.stdout.contains("certificate") && check.stdout.contains("expires"), "\(check)")
    }

    @Test func passwordOfALocalTestUser() async throws {
        let user = "wpw\(getpid() % 100000)"
        let password = "pw-\(UInt64.random(in: 1...UInt64.max))"
        let add = try await CommandRunner.run("/usr/sbin/useradd", ["-M", "-s", "/bin/sh", user])
        try #require(add.status == 0, "\(add)")
        defer { _ = try? runSync("/usr/sbin/userdel", [user]) }
        let chpasswd = try await CommandRunner.run("/bin/sh", ["-c", "echo \"$0:$1\" | /usr/sbin/chpasswd", user, password])
        try #require(chpasswd.status == 0, "\(chpasswd)")

        let lab = try Lab(sshd: SSHDServer.Options(extraConfig: ["PasswordAuthentication yes"]))

        defer { lab.stop() }
        let secret = try lab.directory.write(password + "\n", to: "password")
        let local = try lab.forward()
        let config = tunnel(lab, port: local.port, user: user, ["password_file = \"\(secret)\""])
        try lab.directory.write(config, to: "warren.toml")
        let (result, _) = try await lab.doctor("db", ["--state-dir", lab.stateDir])
        #expect(result.status == 0, "\(result)")

        let warren = try lab.startSupervisor(config: config)
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "up with a password", warren)
        #expect(try TCPClient.echo(port: local.port))
        for pid in ProcessTable.descendants(of: warren.process.pid).map(\.pid) {
            let environ = (try? String(contentsOfFile: "/proc/\(pid)/environ", encoding: .utf8)) ?? ""
            #expect(!environ.contains(password), "the password is in no child's environment")
            let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            #expect(!cmdline.contains(password), "nor on a command line")
        }

        // A 0644 password file is refused before anything runs.
        chmod(secret, 0o644)
        let validate = try await CommandRunner.warren(["validate", "--config", warren.configPath])
        #expect(validate.status == 78 && validate.stderr.contains("tunnels.db.password_file"), "\(validate)")
    }

    @Test func keyProtectedByAPassphrase() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let key = lab.directory.appending("locked")
        try FileManager.default.copyItem(atPath: lab.sshd.clientKeyPath, toPath: key)
        chmod(key, 0o600)
        let lock = try await CommandRunner.run(SSHKeygen.path, ["-q", "-p", "-P", "", "-N", "correct horse", "-f", key])
        try #require(lock.status == 0, "\(lock)")
        let local = try lab.forward()

        // Without passphrase_file: its own kind, not auth_failed, in doctor and in run.
        let bare = tunnel(lab, port: local.port, ["identity_file = \"\(key)\""])
        try lab.directory.write(bare, to: "warren.toml")
        let (result, report) = try await lab.doctor("db", ["--state-dir", lab.stateDir])
        #expect(result.status == 1)
        #expect(report.failedSteps.first?.kind == "key_passphrase", "\(result)")
        do {
            let warren = try lab.startSupervisor(config: bare, name: "bare")
            defer { warren.stop() }
            let failed = warren.waitFor("db") { $0.lastError != nil }
            #expect(failed?.lastError?.kind == .keyPassphrase, "\(warren.logText().suffix(2000))")
        }

        let secret = try lab.directory.write("correct horse\n", to: "passphrase")
        let config = tunnel(lab, port: local.port, ["identity_file = \"\(key)\"", "passphrase_file = \"\(secret)\""])
        let warren = try lab.startSupervisor(config: config)
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "up with the passphrase", warren)
        #expect(try TCPClient.echo(port: local.port))
        let askpass = warren.stateDir + "/tunnels/db/askpass"
        #expect(Lab.mode(askpass) == 0o700)
        #expect(try String(contentsOfFile: askpass, encoding: .utf8).contains("correct horse") == false, "the helper names the file, not the secret")
    }
}

/// Runs a command to its end from synchronous cleanup code.
func runSync(_ path: String, _ arguments: [String]) throws -> Int32 {
    let process = try SpawnedProcess.spawn(path, arguments, log: "/dev/null", diesWithTestProcess: false)
    return process.waitForExit(timeout: .seconds(30)) ?? -1
}
