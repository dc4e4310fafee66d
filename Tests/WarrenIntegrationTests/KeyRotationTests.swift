import Foundation
import Synchronization
import Testing
import WarrenCore
import WarrenTestSupport

/// Two keys per tunnel against a real sshd: `warren keygen --tunnel db --next`,
/// `warren rotate db [--now] [--forget-previous]`, and `check` on an old key.
@Suite(.serialized) struct KeyRotationTests {
    /// A tunnel whose key is a copy of the sshd's client key, in the lab's
    /// directory (rotation renames files beside it).
    func start(_ lab: Lab, extra: [String] = []) throws -> (WarrenSupervisor, port: Int, key: String) {
        let key = lab.directory.appending("db_key")
        try FileManager.default.copyItem(atPath: lab.sshd.clientKeyPath, toPath: key)
        try FileManager.default.copyItem(atPath: lab.sshd.clientKeyPath + ".pub", toPath: key + ".pub")
        chmod(key, 0o600)
        let local = try lab.forward()
        var config = SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec], extra: extra)
        config = config.replacingOccurrences(of: "identity_file = \"\(lab.sshd.clientKeyPath)\"", with: "identity_file = \"\(key)\"")
        let warren = try lab.startSupervisor(config: config)
        try require(warren.waitForState("db", .up), "up with the first key", warren)
        return (warren, local.port, key)
    }

    func publicKey(_ path: String) -> String {
        SSHKeygen.keyWithoutComment((try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
    }

    /// A client connecting (and echoing) every 50 ms until stopped: what was refused.
    final class Clients: Sendable {
        private let counts = Mutex((tried: 0, failed: 0, running: true))
        init(port: Int) {
            Thread.detachNewThread { [self] in
                while counts.withLock({ $0.running }) {
                    let ok = (try? TCPClient.echo(port: port, timeout: .seconds(2))) ?? false
                    counts.withLock { $0.tried += 1; if !ok { $0.failed += 1 } }
                    Thread.sleep(forTimeInterval: 0.05)
                }
            }
        }
        func stop() -> (tried: Int, failed: Int) {
            counts.withLock { $0.running = false }
            Thread.sleep(forTimeInterval: 0.3)
            return counts.withLock { ($0.tried, $0.failed) }
        }
    }

    @Test func refusedNextKeyChangesNothingAndNamesTheLine() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (warren, _, key) = try start(lab)
        let made = try await lab.warren(["keygen", "--tunnel", "db", "--next", "--state-dir", lab.stateDir])
        #expect(made.status == 0, "\(made)")
        let line = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(line.contains("restrict") && line.contains(publicKey(key + ".next.pub")), "the least-privilege line for the next key: \(made)")
        let current = publicKey(key + ".pub")
        let pid = warren.sshPID("db")

        let rotate = try await lab.warren(["rotate", "db", "--state-dir", lab.stateDir])
        #expect(rotate.status == 1, "\(rotate)")
        #expect(rotate.stderr.contains("refused the next key") && rotate.stderr.contains("nothing changed"), "\(rotate)")
        #expect(rotate.stderr.contains(line), "names the line to add: \(rotate)")
        #expect(publicKey(key + ".pub") == current, "the current key is untouched")
        #expect(FileManager.default.fileExists(atPath: key + ".next") && !FileManager.default.fileExists(atPath: key + ".previous"))
        #expect(warren.sshPID("db") == pid && warren.tunnel("db")?.state == .up, "the tunnel is untouched")
        // One failed login, reserved in the penalty budget before it was made.
        let budget = (try? String(contentsOfFile: lab.stateDir + "/penalties", encoding: .utf8)) ?? ""
        #expect(budget.contains("127.0.0.1"), "the refused login is in the budget: \(budget)")
    }

    @Test func authorizedNextKeyRotatesWithoutARefusedClient() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (warren, port, key) = try start(lab)
        let made = try await lab.warren(["keygen", "--tunnel", "db", "--next", "--state-dir", lab.stateDir])
        try #require(made.status == 0, "\(made)")
        let line = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let old = publicKey(key + ".pub"), new = publicKey(key + ".next.pub")
        // The admin's step: both keys authorized for a while.
        try lab.sshd.setAuthorizedKeys([lab.sshd.clientPublicKey, line])
        let pid = warren.sshPID("db")

        let clients = Clients(port: port)
        try await Task.sleep(for: .seconds(1))
        let rotate = try await lab.warren(["rotate", "db", "--state-dir", lab.stateDir])
        try await Task.sleep(for: .seconds(1))
        let (tried, failed) = clients.stop()
        print("key rotation: \(tried) client connections every 50 ms during the rotation, \(failed) refused")
        #expect(rotate.status == 0, "\(rotate)")
        #expect(failed == 0 && tried > 20, "\(failed) of \(tried) client connections failed")
        #expect(publicKey(key + ".pub") == new && publicKey(key + ".previous.pub") == old && !FileManager.default.fileExists(atPath: key + ".next"))
        #expect(warren.sshPID("db") == pid, "without --now the running connection is not touched")
        let fingerprint = try? PublicKey.parse(new).get().key.fingerprint
        #expect(warren.waitFor("db", timeout: .seconds(5)) { $0.credentials?.key?.fingerprint == fingerprint } != nil, "status shows the new key")

        // The admin removes the old key: the next login can only be the new one's.
        try lab.sshd.setAuthorizedKeys([line])
        kill(pid ?? 0, SIGKILL)
        #expect(warren.waitFor("db", timeout: .seconds(10)) { $0.state == .up && $0.pid != pid } != nil)
        #expect(try TCPClient.echo(port: port))
        #expect(lab.sshd.logText().contains("Accepted publickey for \(lab.sshd.user) from 127.0.0.1") && lab.sshd.logText().contains(fingerprint ?? "?"))

        let forget = try await lab.warren(["rotate", "db", "--forget-previous", "--state-dir", lab.stateDir])
        #expect(forget.status == 0 && !FileManager.default.fileExists(atPath: key + ".previous"), "\(forget)")

        // --now: the running tunnel reconnects with the new key at once.
        let again = try await lab.warren(["keygen", "--tunnel", "db", "--next", "--state-dir", lab.stateDir])
        try lab.sshd.setAuthorizedKeys([line, again.stdout.trimmingCharacters(in: .whitespacesAndNewlines)])
        let before = warren.sshPID("db")
        let now = try await lab.warren(["rotate", "db", "--now", "--state-dir", lab.stateDir])
        #expect(now.status == 0, "\(now)")
        #expect(warren.waitFor("db", timeout: .seconds(10)) { $0.state == .up && $0.pid != before } != nil, "reconnected now")
    }

    @Test func checkWarnsOnAnOldKey() async throws {
        let lab = try Lab()
        defer { lab.stop() }
        let (_, _, key) = try start(lab, extra: ["key_max_age_days = 30"])
        let fresh = try await lab.warren(["check", "--json", "--state-dir", lab.stateDir])
        #expect(fresh.status == 0, "\(fresh)")
        #expect(fresh.stdout.contains("0 days old"), "\(fresh)")
        // Made 40 days ago.
        var times = [timespec(tv_sec: time(nil) - 40 * 86400, tv_nsec: 0), timespec(tv_sec: time(nil) - 40 * 86400, tv_nsec: 0)]
        utimensat(AT_FDCWD, key, &times, 0)
        let old = try await lab.warren(["check", "--state-dir", lab.stateDir])
        #expect(old.status == 1, "WARNING: \(old)")
        #expect(old.stdout.contains("is 40 days old, past key_max_age_days = 30") && old.stdout.contains("warren rotate db"), "\(old)")
    }
}
