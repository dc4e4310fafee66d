import Foundation
import Synchronization
import Testing
import WarrenCore
import WarrenTestSupport

/// `certificate_command` against a real sshd that trusts a user CA
/// (`TrustedUserCAKeys`): the command is a small script in the test's
/// directory that signs with `ssh-keygen -s`. The key is in no
/// authorized_keys, so only a valid certificate lets warren in.
@Suite(.serialized) struct CertificateRenewalTests {
    /// Each certificate's lifetime: 25 s (backdated 5 s, as CAs do against skew), so
    /// one is renewed about every 17 s and several times within the run.
    static let validity = "-5s:+20s"

    struct Setup {
        let lab: Lab
        let key: String
        let work: TemporaryDirectory
        let port: Int
        var failFlag: String { work.appending("fail") }
        var runsLog: String { work.appending("runs") }
        var certificate: String { key + "-cert.pub" }
        var metricsFile: String { lab.directory.appending("metrics.prom") }

        var runs: Int { ((try? String(contentsOfFile: runsLog, encoding: .utf8)) ?? "").split(separator: "\n").count }
        func metrics() -> String { (try? String(contentsOfFile: metricsFile, encoding: .utf8)) ?? "" }
    }

    func setUp() throws -> Setup {
        let lab = try Lab(sshd: nil)
        let work = try lab.makeDirectory(prefix: "wcr-")
        let caPub = try SSHKeygen.generate(at: work.appending("ca"))
        _ = try work.write(caPub + "\n", to: "ca.pub.trusted", mode: 0o644)
        try lab.startSSHD(SSHDServer.Options(extraConfig: ["TrustedUserCAKeys \(work.appending("ca.pub.trusted"))"]))
        try lab.startTarget()
        let key = lab.directory.appending("certified")
        try SSHKeygen.generate(at: key)
        // Signs a copy of the public key (ssh-keygen -s writes KEY-cert.pub beside
        // its input, which is where warren installs the certificate itself).
        let script = """
            #!/bin/sh
            set -e
            echo "$(date +%s) $1" >> \(work.appending("runs"))
            if [ -e \(work.appending("fail")) ]; then
                echo "Error making API request: permission denied $(printf '\\033[31m')red" >&2
                exit 2
            fi
            tmp=$(mktemp -d)
            cp "$1" "$tmp/k.pub"
            \(SSHKeygen.path) -q -s \(work.appending("ca")) -I warren-renewal -n \(lab.sshd.user) -V \(Self.validity) "$tmp/k.pub"
            cat "$tmp/k-cert.pub"
            rm -rf "$tmp"
            """
        _ = try work.write(script, to: "sign.sh", mode: 0o755)
        let local = try lab.forward()
        let config = SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec], extra: [
            "certificate_command = [\"\(work.appending("sign.sh"))\", \"{public_key}\"]",
        ]).replacingOccurrences(of: "identity_file = \"\(lab.sshd.clientKeyPath)\"", with: "identity_file = \"\(key)\"")
        try lab.directory.write(config, to: "warren.toml")
        return Setup(lab: lab, key: key, work: work, port: local.port)
    }

    /// Renewed again and again over 75 s while the tunnel's ssh is killed
    /// (SIGKILL) every 7-9 s, at moments spread over the certificates'
    /// lifetimes: each time it is back within seconds, with a valid certificate.
    @Test func renewedBeforeExpiryAndEveryKillRecovered() async throws {
        let setup = try setUp()
        let lab = setup.lab
        defer { lab.stop() }
        let warren = try lab.startSupervisor(arguments: ["--metrics-file", setup.metricsFile])
        try require(warren.waitForState("db", .up, timeout: .seconds(30)), "up with the first certificate", warren)
        #expect(FileManager.default.fileExists(atPath: setup.certificate))
        let port = setup.port
        // On a thread of its own, not the test pool's: under the full parallel
        // suite a pool task's sleep could outlast several kill moments.
        let result: (recoveries: [Double], expiries: Set<String>, kills: Int, misses: [String], seconds: Double) = await withCheckedContinuation { done in
            Thread.detachNewThread {
                let started = ContinuousClock.now
                var recoveries: [Double] = [], expiries: Set<String> = [], misses: [String] = []
                var kills = 0
                var nextKill = started + .milliseconds(Int.random(in: 7000...9000))
                while ContinuousClock.now - started < .seconds(75) {
                    if let before = warren.tunnel("db")?.credentials?.certificate?.validBefore { expiries.insert(before) }
                    guard ContinuousClock.now >= nextKill else {
                        Thread.sleep(forTimeInterval: 0.25)
                        continue
                    }
                    nextKill = ContinuousClock.now + .milliseconds(Int.random(in: 7000...9000))
                    guard let pid = warren.sshPID("db"), warren.tunnel("db")?.state == .up else {
                        misses.append("not up before kill \(kills + 1): \(String(describing: warren.tunnel("db")))")
                        continue
                    }
                    let killedAt = ContinuousClock.now
                    kill(pid, SIGKILL)
                    kills += 1
                    let back = waitUntil(timeout: .seconds(10)) {
                        guard let status = warren.tunnel("db"), status.state == .up, let now = status.pid else { return false }
                        return now != pid
                    }
                    let seconds = (ContinuousClock.now - killedAt) / .seconds(1)
                    if !back || !((try? TCPClient.echo(port: port)) ?? false) { misses.append("kill \(kills) not recovered within 10 s") }
                    recoveries.append(seconds)
                }
                done.resume(returning: (recoveries, expiries, kills, misses, (ContinuousClock.now - started) / .seconds(1)))
            }
        }
        let (recoveries, expiries, kills) = (result.recoveries, result.expiries, result.kills)
        #expect(result.misses.isEmpty, "\(result.misses)")
        #expect(kills >= 7, "a kill every 7-9 s: \(kills)")
        let renewals = setup.runs
        print("certificate renewal: \(renewals) runs of certificate_command in \(Int(result.seconds)) s, \(expiries.count) distinct certificates seen, \(kills) kills, recovery max \(String(format: "%.2f", recoveries.max() ?? -1)) s, mean \(String(format: "%.2f", recoveries.reduce(0, +) / Double(max(1, recoveries.count)))) s; each: \(recoveries.map { String(format: "%.2f", $0) }.joined(separator: " "))")
        #expect(renewals >= 5, "renewed about every 17 s: \(renewals) runs")
        #expect(expiries.count >= 4, "\(expiries)")
        #expect((recoveries.max() ?? 99) < 3, "\(recoveries)")
        #expect(!warren.logText().contains("certificate_expired"), "no login was ever tried with an expired certificate")
        let status = try #require(warren.tunnel("db")?.credentials?.certificate)
        #expect(status.lastRenewal?.ok == true)
        #expect(setup.metrics().contains("warren_tunnel_certificate_renewal_success{tunnel=\"db\"} 1"), "\(setup.metrics())")
    }

    /// A failing command keeps the last good certificate, says so in status
    /// and metrics; once that certificate has expired the tunnel fails as
    /// `certificate_expired` without trying a login, and comes back as soon as
    /// the command works again.
    @Test func failingCommandKeepsTheLastGoodCertificate() async throws {
        let setup = try setUp()
        let lab = setup.lab
        defer { lab.stop() }
        let warren = try lab.startSupervisor(arguments: ["--metrics-file", setup.metricsFile])
        try require(warren.waitForState("db", .up, timeout: .seconds(30)), "up with the first certificate", warren)
        let good = try String(contentsOfFile: setup.certificate, encoding: .utf8)
        _ = try setup.work.write("", to: "fail")

        let failed = warren.waitFor("db", timeout: .seconds(30)) { $0.credentials?.certificate?.lastRenewal?.ok == false }
        let renewal = try #require(failed?.credentials?.certificate?.lastRenewal, "\(warren.logText().suffix(3000))")
        #expect(renewal.message.contains("exited with status 2: Error making API request: permission denied"), "\(renewal.message)")
        #expect(renewal.message.contains("keeping the last good certificate"), "\(renewal.message)")
        #expect(!renewal.message.contains("\u{1B}"), "the command's stderr is escaped")
        #expect(try String(contentsOfFile: setup.certificate, encoding: .utf8) == good, "the last good certificate stays")
        #expect(warren.tunnel("db")?.state == .up, "the running connection is not touched")
        #expect(waitUntil(timeout: .seconds(5)) { setup.metrics().contains("warren_tunnel_certificate_renewal_success{tunnel=\"db\"} 0") }, "\(setup.metrics())")
        let status = try await lab.warren(["status", "--state-dir", lab.stateDir])
        #expect(status.stdout.contains("db: certificate \(setup.certificate) valid until"), "\(status)")
        #expect(status.stdout.contains("FAILED: certificate_command"), "\(status)")
        let check = try await lab.warren(["check", "--state-dir", lab.stateDir])
        #expect(check.status == 1, "a failed renewal is a WARNING: \(check)")
        #expect(check.stdout.contains("the last renewal of the certificate"), "\(check)")

        // The kept certificate runs out; a drop now cannot log in, and says why.
        let expiry = try #require(failed?.credentials?.certificate?.validBeforeUnix)
        let wait = expiry - Date().timeIntervalSince1970 + 1
        if wait > 0 { try await Task.sleep(for: .seconds(wait)) }
        let pid = try #require(warren.sshPID("db"))
        kill(pid, SIGKILL)
        let down = warren.waitFor("db", timeout: .seconds(15)) { $0.lastError?.kind == .certificateExpired && $0.state != .up }
        #expect(down != nil, "\(String(describing: warren.tunnel("db")))")
        #expect(down?.lastError?.hint.contains("certificate_command") == true)
        #expect(!lab.sshd.logText().contains("Certificate invalid: expired"), "warren did not offer the expired certificate")

        unlink(setup.failFlag)
        let fixedAt = ContinuousClock.now
        try require(warren.waitForState("db", .up, timeout: .seconds(15)), "up again once the command works", warren)
        print("certificate renewal: back up \(String(format: "%.2f", (ContinuousClock.now - fixedAt) / .seconds(1))) s after the command works again")
        #expect(try TCPClient.echo(port: setup.port))
        #expect(waitUntil(timeout: .seconds(5)) { setup.metrics().contains("warren_tunnel_certificate_renewal_success{tunnel=\"db\"} 1") })
    }
}
