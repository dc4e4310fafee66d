import Foundation
import Testing
import WarrenCore
import WarrenTestSupport

/// Every common way to log in, against a real sshd: an ssh-agent started by the
/// test, a user CA trusted with TrustedUserCAKeys, a local user with a
/// password, and a key protected by a passphrase.
@Suite(.serialized) struct LoginMethodTests {
    /// A tunnel `db` to `sshd` with `login` lines in place of identity_file.
    func tunnel(_ scene: Scene, port: Int, user: String? = nil, _ login: [String]) -> String {
        """
        [tunnels.db]
        host = "127.0.0.1"
        port = \(scene.sshd.port)
        user = "\(user ?? scene.sshd.user)"
        host_key = "\(SSHKeygen.keyWithoutComment(scene.sshd.hostKeyLine))"
        connect_timeout = 3
        backoff_min = 0.2
        backoff_max = 2
        probe_interval = 1
        local_forward = ["127.0.0.1:\(port):127.0.0.1:\(scene.target.port)"]
        \(login.joined(separator: "\n"))
        """
    }

    func doctor(_ directory: TemporaryDirectory, environment: [String: String] = [:]) async throws -> (CommandResult, DoctorReport) {
        let result = try await CommandRunner.warren(
            ["doctor", "db", "--json", "--config", directory.appending("warren.toml"), "--state-dir", directory.appending("state")],
            environment: environment)
        return (result, try JSONDecoder().decode(DoctorReport.self, from: Data(result.stdout.utf8)))
    }

    @Test func keysHeldByAnAgentStartedByTheTest() async throws {
        let scene = try Scene()
        let socket = scene.directory.appending("agent.sock")
        let agent = try SpawnedProcess.spawn("/usr/bin/ssh-agent", ["-D", "-a", socket], log: scene.directory.appending("agent.log"))
        defer { agent.terminate() }
        #expect(waitUntil(timeout: .seconds(10)) { FileManager.default.fileExists(atPath: socket) })
        let add = try await CommandRunner.run("/usr/bin/ssh-add", [scene.sshd.clientKeyPath], environment: ["SSH_AUTH_SOCK": socket])
        try #require(add.status == 0, "\(add)")

        // By path: doctor lists the agent's key and logs in with it.
        let local = try scene.forward()
        try scene.directory.write(tunnel(scene, port: local.port, ["identity_agent = \"\(socket)\""]), to: "warren.toml")
        let (result, report) = try await doctor(scene.directory)
        #expect(result.status == 0, "\(result)")
        #expect(report.step(2)?.evidence.contains { $0.contains("agent at \(socket) holds 1 key") } == true, "\(result)")

        // The environment's agent (identity_agent = "SSH_AUTH_SOCK") under `warren run`.
        let config = tunnel(scene, port: local.port, ["identity_agent = \"SSH_AUTH_SOCK\""])
        var environment = ProcessInfo.processInfo.environment
        environment["SSH_AUTH_SOCK"] = socket
        let warren = try WarrenSupervisor.start(config: config, in: scene.directory, environment: environment)
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "up with the agent's key", warren)
        #expect(try TCPClient.echo(port: local.port))
        let rendered = try String(contentsOfFile: warren.stateDir + "/tunnels/db/ssh_config", encoding: .utf8)
        #expect(rendered.contains("IdentityAgent SSH_AUTH_SOCK") && rendered.contains("IdentitiesOnly no") && !rendered.contains("IdentityFile"))
    }

    @Test func userCertificateSignedByATrustedCA() async throws {
        let work = try TemporaryDirectory(prefix: "wca-")
        defer { work.remove() }
        let caPub = try SSHKeygen.generate(at: work.appending("ca"))
        _ = try work.write(caPub + "\n", to: "ca.pub.trusted", mode: 0o644)
        let scene = try Scene(sshd: SSHDServer.Options(extraConfig: ["TrustedUserCAKeys \(work.appending("ca.pub.trusted"))"]))
        // A key that is in no authorized_keys: only the certificate lets it in.
        let key = scene.directory.appending("certified")
        _ = try SSHKeygen.generate(at: key)
        let sign = try await CommandRunner.run(
            SSHKeygen.path, ["-q", "-s", work.appending("ca"), "-I", "warren-test", "-n", scene.sshd.user, "-V", "-1h:+3d", key + ".pub"])
        try #require(sign.status == 0, "\(sign)")
        // Not beside the key as KEY-cert.pub, where ssh would find it by itself.
        let certificate = scene.directory.appending("issued.cert")
        try FileManager.default.moveItem(atPath: key + "-cert.pub", toPath: certificate)
        let local = try scene.forward()
        let login = ["identity_file = \"\(key)\"", "certificate_file = \"\(certificate)\""]
        try scene.directory.write(tunnel(scene, port: local.port, login), to: "warren.toml")

        let (result, report) = try await doctor(scene.directory)
        #expect(result.status == 0, "\(result)")
        #expect(report.step(2)?.evidence.contains { $0.contains("principals \(scene.sshd.user); valid until ") } == true, "\(result)")

        // Without the certificate the same key is refused.
        try scene.directory.write(tunnel(scene, port: local.port, [login[0]]), to: "warren.toml")
        let (refused, refusedReport) = try await doctor(scene.directory)
        #expect(refused.status == 1)
        #expect(refusedReport.failedSteps.first?.kind == "auth_failed")

        let warren = try WarrenSupervisor.start(
            config: tunnel(scene, port: local.port, login), in: scene.directory,
            arguments: ["--metrics-file", scene.directory.appending("metrics.prom")])
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "up with the certificate", warren)
        #expect(try TCPClient.echo(port: local.port))
        // Read from the certificate at start (ssh-keygen -L), written with the next metrics update.
        var metrics = ""
        let exported = waitUntil(timeout: .seconds(10)) {
            metrics = (try? String(contentsOfFile: scene.directory.appending("metrics.prom"), encoding: .utf8)) ?? ""
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

        let scene = try Scene(sshd: SSHDServer.Options(extraConfig: ["PasswordAuthentication yes"]))
        let secret = try scene.directory.write(password + "\n", to: "password")
        let local = try scene.forward()
        let config = tunnel(scene, port: local.port, user: user, ["password_file = \"\(secret)\""])
        try scene.directory.write(config, to: "warren.toml")
        let (result, _) = try await doctor(scene.directory)
        #expect(result.status == 0, "\(result)")

        let warren = try WarrenSupervisor.start(config: config, in: scene.directory)
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
        let scene = try Scene()
        let key = scene.directory.appending("locked")
        try FileManager.default.copyItem(atPath: scene.sshd.clientKeyPath, toPath: key)
        chmod(key, 0o600)
        let lock = try await CommandRunner.run(SSHKeygen.path, ["-q", "-p", "-P", "", "-N", "correct horse", "-f", key])
        try #require(lock.status == 0, "\(lock)")
        let local = try scene.forward()

        // Without passphrase_file: its own kind, not auth_failed, in doctor and in run.
        let bare = tunnel(scene, port: local.port, ["identity_file = \"\(key)\""])
        try scene.directory.write(bare, to: "warren.toml")
        let (result, report) = try await doctor(scene.directory)
        #expect(result.status == 1)
        #expect(report.failedSteps.first?.kind == "key_passphrase", "\(result)")
        do {
            let warren = try WarrenSupervisor.start(config: bare, in: scene.directory, name: "bare")
            defer { warren.stop() }
            let failed = warren.waitFor("db") { $0.lastError != nil }
            #expect(failed?.lastError?.kind == .keyPassphrase, "\(warren.logText().suffix(2000))")
        }

        let secret = try scene.directory.write("correct horse\n", to: "passphrase")
        let config = tunnel(scene, port: local.port, ["identity_file = \"\(key)\"", "passphrase_file = \"\(secret)\""])
        let warren = try WarrenSupervisor.start(config: config, in: scene.directory)
        defer { warren.stop() }
        try require(warren.waitForState("db", .up), "up with the passphrase", warren)
        #expect(try TCPClient.echo(port: local.port))
        let askpass = warren.stateDir + "/tunnels/db/askpass"
        #expect(Workspace.mode(askpass) == 0o700)
        #expect(try String(contentsOfFile: askpass, encoding: .utf8).contains("correct horse") == false, "the helper names the file, not the secret")
    }
}

/// Runs a command to its end from synchronous cleanup code.
func runSync(_ path: String, _ arguments: [String]) throws -> Int32 {
    let process = try SpawnedProcess.spawn(path, arguments, log: "/dev/null", diesWithTestProcess: false)
    return process.waitForExit(timeout: .seconds(30)) ?? -1
}
