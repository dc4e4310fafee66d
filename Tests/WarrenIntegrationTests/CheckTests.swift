import Foundation
import Testing
import WarrenCore
import WarrenRuntime
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `warren check` as cron and Nagios run it: the real binary against a real
/// sshd and real targets, with and without a supervisor, every exit code.
@Suite(.serialized)
struct CheckTests {
    let schema: CheckJSONSchema

    init() throws {
        schema = try CheckJSONSchema.load()
    }

    /// Runs `check ARGS` twice, as text and as --json; both must agree on the
    /// exit code, and the JSON must match docs/check-json.md.
    func check(_ lab: Lab, _ arguments: [String], expect code: Int32, sourceLocation: SourceLocation = #_sourceLocation) async throws -> (text: CommandResult, json: [String: Any]) {
        let text = try await lab.warren(["check"] + arguments)
        #expect(text.status == code, "check \(arguments): \(text)\nsupervisor log:\n\(lab.supervisorLog())", sourceLocation: sourceLocation)
        let json = try await lab.warren(["check", "--json"] + arguments)
        #expect(json.status == code, "check --json \(arguments): \(json)", sourceLocation: sourceLocation)
        let object = try schema.validate(json.stdout, sourceLocation: sourceLocation)
        #expect(object["exit_code"] as? Int == Int(code), sourceLocation: sourceLocation)
        #expect(object["summary"] as? String == text.stdout.split(separator: "\n").first.map { String($0.split(separator: "|")[0]).trimmingCharacters(in: .whitespaces) },
                "the JSON summary is the plugin's first line", sourceLocation: sourceLocation)
        return (text, object)
    }

    func lines(_ result: CommandResult) -> [String] {
        result.stdout.split(separator: "\n").map(String.init)
    }

    func tunnels(_ object: [String: Any]) -> [String: [String: Any]] {
        Dictionary(uniqueKeysWithValues: ((object["tunnels"] as? [[String: Any]]) ?? []).map { ($0["name"] as? String ?? "", $0) })
    }

    // MARK: - No supervisor: ask the bastion

    @Test func directModeEveryExitCode() async throws {
        let lab = try Lab.conditions()
        defer { lab.stop() }
        // Something else holds ok's local port: asking the bastion binds nothing,
        // so the target answers, but the tunnel could not start: WARNING, naming the holder.
        let squatter = try lab.startTarget(port: lab.localPort(.ok))
        let taken = try await check(lab, ["ok"], expect: 1)
        #expect(lines(taken.text) == [
            "WARREN WARNING - no supervisor; connected directly: 1/1 tunnel up | up=1 degraded=0 down=0 unknown=0",
            "ok: WARNING: local port 127.0.0.1:\(lab.localPort(.ok)) is taken by pid \(getpid()) (\((ProcessTable.cmdline(getpid()) ?? "").replacingOccurrences(of: "|", with: "/"))): the tunnel cannot listen there when it starts; stop that program (ss -ltnp 'sport = :\(lab.localPort(.ok))') or change local_forward",
        ], "\(taken.text)")
        #expect((tunnels(taken.json)["ok"]?["warnings"] as? [String])?.count == 1)
        #expect(squatter.acceptedConnections == 0, "the check never touched the local port")
        squatter.stop()

        let ok = try await check(lab, ["ok"], expect: 0)
        #expect(lines(ok.text) == ["WARREN OK - no supervisor; connected directly: 1/1 tunnel up | up=1 degraded=0 down=0 unknown=0"])
        #expect(ok.json["mode"] as? String == "direct")
        #expect(ok.json["supervisor_pid"] is NSNull)
        let okForwards = tunnels(ok.json)["ok"]?["forwards"] as? [[String: Any]]
        #expect(okForwards?.first?["result"] as? String == "reachable")

        let warning = try await check(lab, ["ok", "deg"], expect: 1)
        let warningLines = lines(warning.text)
        #expect(warningLines.first == "WARREN WARNING - no supervisor; connected directly: 1/2 tunnels up, 1 degraded | up=1 degraded=1 down=0 unknown=0")
        #expect(warningLines.count == 2)
        // The hint names the real target, not `nc -z HOST PORT`.
        #expect(warningLines.last?.hasPrefix("deg: degraded (target_unreachable): channel 0: open failed: connect failed: Connection refused -- fix: the bastion cannot reach the target") == true)
        #expect(warningLines.last?.contains("try `nc -z 127.0.0.1 ") == true, "\(warning.text)")
        #expect(warningLines.last?.contains("HOST PORT") == false)

        let critical = try await check(lab, [], expect: 2)
        let criticalLines = lines(critical.text)
        #expect(criticalLines.first == "WARREN CRITICAL - no supervisor; connected directly: 1/4 tunnels up, 1 degraded, 2 down | up=1 degraded=1 down=2 unknown=0")
        #expect(criticalLines.contains { $0.hasPrefix("denied: down (auth_failed): \(lab.sshd.user)@127.0.0.1: Permission denied (publickey). -- fix: ") })
        #expect(criticalLines.contains { $0.hasPrefix("refused: down (connection_refused): ssh: connect to host 127.0.0.1 port ") })
        #expect(criticalLines.count == 4, "one line per tunnel that is not up: \(critical.text.stdout)")
        let byName = tunnels(critical.json)
        #expect(byName["denied"]?["kind"] as? String == "auth_failed")
        #expect((byName["denied"]?["hint"] as? String)?.contains("`warren authorized-key denied`") == true, "the hint names the tunnel")
        #expect((byName["refused"]?["forwards"] as? [[String: Any]])?.first?["result"] as? String == "failed")

        // The config now names a key that does not exist: nothing can be checked.
        let broken = try String(contentsOfFile: lab.configPath, encoding: .utf8).replacingOccurrences(of: lab.sshd.clientKeyPath, with: "/nonexistent/key")
        try broken.write(toFile: lab.configPath, atomically: true, encoding: .utf8)
        let unknown = try await check(lab, [], expect: 3)
        #expect(lines(unknown.text).first == "WARREN UNKNOWN - the config cannot be used:")
        #expect(unknown.text.stdout.contains("\(lab.configPath): defaults.identity_file: "))
        #expect(unknown.json["mode"] as? String == "none")
        #expect((unknown.json["error"] as? String)?.contains("defaults.identity_file") == true)

        #expect(waitUntil(timeout: .seconds(5)) { lab.sshProcesses().isEmpty }, "every one-shot ssh is gone: \(lab.sshProcesses())")
        #expect(squatter.acceptedConnections == 0)
    }

    @Test func configThatCannotBeReadIsUnknown() async throws {
        try await withTemporaryDirectory(prefix: "ck-") { dir in
            let missing = try await CommandRunner.warren(["check", "--config", dir.appending("nope.toml")])
            #expect(missing.status == 3, "\(missing)")
            #expect(missing.stdout.hasPrefix("WARREN UNKNOWN - the config cannot be used:\n\(dir.appending("nope.toml")): the config file does not exist"))
            let garbage = try dir.write("[tunnels.db\nhost = 1\n", to: "warren.toml")
            let syntax = try await CommandRunner.warren(["check", "--json", "--config", garbage])
            #expect(syntax.status == 3, "\(syntax)")
            let object = try schema.validate(syntax.stdout)
            #expect(object["status"] as? String == "UNKNOWN")
            #expect((object["error"] as? String)?.contains("\(garbage):1:") == true)
            #expect((object["tunnels"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func aBastionThatDoesNotAnswerIsUnknownWithinTheTimeout() async throws {
        // ssh would wait 30 s for the banner; the check must not.
        let lab = try Lab.conditions([.ok], connectTimeout: 30)
        defer { lab.stop() }
        lab.sshd.freezeConnections()
        defer { lab.sshd.thawConnections() }
        let started = ContinuousClock.now
        let result = try await lab.warren(["check", "--timeout", "2"])
        let elapsed = ContinuousClock.now - started
        #expect(result.status == 3, "\(result)")
        #expect(lines(result).first == "WARREN UNKNOWN - no supervisor; connected directly: 0/1 tunnel up, 1 unknown | up=0 degraded=0 down=0 unknown=1")
        #expect(lines(result).dropFirst().first?.hasPrefix("ok: unknown (no_answer): the bastion did not answer in time (waited ") == true, "\(result)")
        // 2 s, and the binary's own start-up: far from ssh's own 30 s.
        #expect(elapsed < .seconds(6), "the check took \(elapsed)")
        print("check --timeout 2 against a frozen bastion took \(elapsed)")
        #expect(waitUntil(timeout: .seconds(5)) { lab.sshProcesses().isEmpty }, "the one-shot ssh was stopped: \(lab.sshProcesses())")
    }

    // MARK: - A supervisor runs: its status plus live probes

    @Test func supervisorModeEveryExitCode() async throws {
        let lab = try Lab.conditions()
        defer { lab.stop() }
        let supervisor = try lab.startSupervisor()
        let settled = lab.waitForStatus([
            .ok: { $0.state == .up },
            .deg: { $0.state == .degraded },
            .refused: { $0.restarts >= 1 || $0.lastError?.kind == .connectionRefused },
            .denied: { $0.state == .failed },
        ])
        try #require(settled, "the supervisor did not settle: \(String(describing: lab.statusReport()))\n\(lab.supervisorLog())")

        let ok = try await check(lab, ["ok"], expect: 0)
        #expect(lines(ok.text) == ["WARREN OK - 1/1 tunnel up | up=1 degraded=0 down=0 unknown=0"])
        #expect(ok.json["mode"] as? String == "supervisor")
        #expect(ok.json["supervisor_pid"] as? Int == Int(supervisor.process.pid))
        let okTunnel = tunnels(ok.json)["ok"]
        #expect((okTunnel?["supervisor"] as? [String: Any])?["state"] as? String == "up")
        #expect((okTunnel?["forwards"] as? [[String: Any]])?.first?["result"] as? String == "reachable")

        let warning = try await check(lab, ["deg", "ok"], expect: 1)
        #expect(lines(warning.text).first == "WARREN WARNING - 1/2 tunnels up, 1 degraded | up=1 degraded=1 down=0 unknown=0")
        #expect(lines(warning.text).dropFirst().first?.hasPrefix("deg: degraded (target_unreachable): a connection through 127.0.0.1:\(lab.localPort(.deg)) was accepted and then closed") == true, "\(warning.text)")

        let critical = try await check(lab, [], expect: 2)
        let criticalLines = lines(critical.text)
        #expect(criticalLines.first == "WARREN CRITICAL - 1/4 tunnels up, 1 degraded, 2 down | up=1 degraded=1 down=2 unknown=0")
        #expect(criticalLines.contains { $0.hasPrefix("denied: down (auth_failed): \(lab.sshd.user)@127.0.0.1: Permission denied (publickey).") })
        #expect(criticalLines.contains { $0.hasPrefix("refused: down (connection_refused): ssh: connect to host 127.0.0.1 port ") })
        #expect((tunnels(critical.json)["denied"]?["supervisor"] as? [String: Any])?["state"] as? String == "failed")

        // A tunnel warren does not run is down too: add one to the config
        // without reloading the supervisor.
        let config = try String(contentsOfFile: lab.configPath, encoding: .utf8)
        try (config + "\n[tunnels.added]\nhost = \"127.0.0.1\"\nport = \(lab.sshd.port)\nhost_key = \"\(lab.sshd.hostKeyLine)\"\nlocal_forward = [\"127.0.0.1:\(try FreePort.find()):127.0.0.1:\(lab.target.port)\"]\n")
            .write(toFile: lab.configPath, atomically: true, encoding: .utf8)
        let notRunning = try await check(lab, ["added"], expect: 2)
        #expect(lines(notRunning.text).dropFirst().first?.hasPrefix("added: down (not_supervised): warren runs, but not this tunnel -- fix: ") == true, "\(notRunning.text)")

        // The config breaks under the running supervisor: the check says so,
        // whatever the supervisor still runs.
        try "[tunnels.ok\n".write(toFile: lab.configPath, atomically: true, encoding: .utf8)
        let unknown = try await check(lab, ["--state-dir", lab.stateDir], expect: 3)
        #expect(lines(unknown.text).first == "WARREN UNKNOWN - the config cannot be used:")
        #expect(supervisor.process.isAlive, "checks do not disturb the supervisor")

        #expect(lab.stopSupervisor() == 0, "warren run stops cleanly: \(lab.supervisorLog())")
    }

    @Test func aStoppedSupervisorMeansDirectMode() async throws {
        let lab = try Lab.conditions([.ok])
        defer { lab.stop() }
        try lab.startSupervisor()
        try #require(lab.waitForStatus([.ok: { $0.state == .up }]), "\(lab.supervisorLog())")
        #expect(try await check(lab, [], expect: 0).json["mode"] as? String == "supervisor")
        #expect(lab.stopSupervisor() == 0)
        // status.json remains (running: false); the lock is free again.
        #expect(lab.statusReport()?.running == false)
        let after = try await check(lab, [], expect: 0)
        #expect(after.json["mode"] as? String == "direct")
    }

    // MARK: - The document

    @Test func theDocumentListsEveryKindStateAndResult() throws {
        #expect(Set(schema.values("tunnels[].kind")) == Set(FailureKind.allCases.map(\.rawValue) + CheckKind.checkOnly.map(\.rawValue)))
        #expect(schema.values("tunnels[].supervisor.state") == TunnelState.allCases.map(\.rawValue))
        #expect(schema.values("tunnels[].state") == CheckedState.allCases.map(\.rawValue))
        #expect(schema.values("tunnels[].forwards[].result") == ForwardCheck.Result.allCases.map(\.rawValue))
        #expect(schema.values("status") == CheckStatus.allCases.map(\.rawValue))
        #expect(schema.keys.count >= 30, "the key table was read: \(schema.keys.keys.sorted())")
    }
}
