import Foundation
import Testing
import WarrenCore
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `warren check` and `status` say what they looked at: a one-shot login is not
/// a running warren, a supervisor's config is found from any directory, and a
/// port another program holds is named while the supervisor runs.
@Suite(.serialized)
struct CheckSaysWhatItCheckedTests {
    let schema: CheckJSONSchema

    init() throws {
        schema = try CheckJSONSchema.load()
    }

    func lines(_ result: CommandResult) -> [String] {
        result.stdout.split(separator: "\n").map(String.init)
    }

    @Test func withoutASupervisorTheFirstLineSaysSoAndRequireSupervisorIsCritical() async throws {
        let lab = try Lab.conditions([.ok])
        defer { lab.stop() }
        // First, before anything wrote the tunnel's files: --require-supervisor asks no bastion.
        let required = try await lab.warren(["check", "--require-supervisor"])
        #expect(required.status == 2, "\(required)")
        #expect(lines(required) == [
            "WARREN CRITICAL - no supervisor: 0/1 tunnel up, 1 down | up=0 degraded=0 down=1 unknown=0",
            "ok: down (no_supervisor): no warren supervises \(lab.stateDir) (--require-supervisor) -- fix: \(CheckKind.noSupervisor.hint)",
        ], "\(required)")
        #expect(!FileManager.default.fileExists(atPath: lab.tunnelFile("ok", "ssh_config")), "no ssh was prepared to ask the bastion")
        let requiredJSON = try await lab.warren(["check", "--json", "--require-supervisor"])
        #expect(requiredJSON.status == 2)
        let requiredObject = try schema.validate(requiredJSON.stdout)
        #expect(requiredObject["mode"] as? String == "none")
        #expect(requiredObject["supervisor_running"] as? Bool == false)
        #expect((requiredObject["tunnels"] as? [[String: Any]])?.first?["kind"] as? String == "no_supervisor")

        // Without the flag, it connects by itself and says that it did.
        let direct = try await lab.warren(["check"])
        #expect(direct.status == 0, "\(direct)")
        #expect(lines(direct) == ["WARREN OK - no supervisor; connected directly: 1/1 tunnel up | up=1 degraded=0 down=0 unknown=0"])
        let directJSON = try schema.validate(try await lab.warren(["check", "--json"]).stdout)
        #expect(directJSON["mode"] as? String == "direct")
        #expect(directJSON["supervisor_running"] as? Bool == false)
        #expect(directJSON["summary"] as? String == "WARREN OK - no supervisor; connected directly: 1/1 tunnel up")

        // With a supervisor, the flag changes nothing.
        try lab.startSupervisor()
        try #require(lab.waitForStatus([.ok: { $0.state == .up }]), "\(lab.supervisorLog())")
        let supervised = try await lab.warren(["check", "--require-supervisor"])
        #expect(supervised.status == 0, "\(supervised)")
        #expect(lines(supervised) == ["WARREN OK - 1/1 tunnel up | up=1 degraded=0 down=0 unknown=0"])
        let supervisedJSON = try schema.validate(try await lab.warren(["check", "--json", "--require-supervisor"]).stdout)
        #expect(supervisedJSON["supervisor_running"] as? Bool == true)
        #expect(lab.stopSupervisor() == 0, "\(lab.supervisorLog())")
    }

    /// A supervisor started as `warren run --config ./warren.toml` records the
    /// absolute path; status and check run from elsewhere find that config.
    @Test func statusAndCheckFindTheSupervisorsConfigFromAnyDirectory() async throws {
        let lab = try Lab.conditions([.ok])
        defer { lab.stop() }
        // Runs `warren run --config ./warren.toml ...` in the lab's directory.
        let inLabDirectory = ["/bin/sh", "-c", "cd \"$0\" && bin=\"$1\" && shift 4 && exec \"$bin\" run --config ./warren.toml \"$@\"", lab.directory.path]
        try lab.startSupervisor(launcher: inLabDirectory)
        try #require(lab.waitForStatus([.ok: { $0.state == .up }]), "\(lab.supervisorLog())")
        let absolute = URL(fileURLWithPath: lab.configPath).resolvingSymlinksInPath().path
        let recorded = try #require(lab.statusReport()?.configFile)
        #expect(URL(fileURLWithPath: recorded).resolvingSymlinksInPath().path == absolute && recorded.hasPrefix("/"), "status.json: \(recorded)")

        try await withTemporaryDirectory(prefix: "elsewhere-") { elsewhere in
            func warren(_ arguments: [String]) async throws -> CommandResult {
                // No --config, no $WARREN_CONFIG, no ./warren.toml here.
                try await CommandRunner.run("/usr/bin/env", ["-u", "WARREN_CONFIG", "/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", elsewhere.path, CommandRunner.warrenBinary] + arguments)
            }
            let status = try await warren(["status", "--state-dir", lab.stateDir])
            #expect(status.status == 0, "\(status)")
            #expect(status.stdout.contains(", config \(recorded), updated "), "\(status)")
            let check = try await warren(["check", "--json", "--state-dir", lab.stateDir])
            #expect(check.status == 0, "\(check)")
            let object = try schema.validate(check.stdout)
            #expect(object["mode"] as? String == "supervisor")
            #expect(object["config_file"] as? String == recorded)
        }
        #expect(lab.stopSupervisor() == 0, "\(lab.supervisorLog())")
    }

    @Test func statusAndCheckNameTheProgramHoldingALocalPort() async throws {
        let lab = try Lab.conditions([.ok])
        defer { lab.stop() }
        let squatter = try lab.startTarget(port: lab.localPort(.ok))
        defer { squatter.stop() }
        try lab.startSupervisor()
        try #require(lab.waitForStatus([.ok: { $0.lastError?.kind == .localPortInUse }]), "\(String(describing: lab.statusReport()))\n\(lab.supervisorLog())")
        let holder = "127.0.0.1:\(lab.localPort(.ok)) is held by pid \(getpid()) ("

        let status = try await lab.warren(["status"])
        #expect(status.status == 0, "\(status)")
        #expect(status.stdout.contains("\n  port \(holder)"), "\(status)")
        let check = try await lab.warren(["check", "--json"])
        #expect(check.status == 2, "\(check)")
        let tunnel = (try schema.validate(check.stdout)["tunnels"] as? [[String: Any]])?.first
        #expect(tunnel?["kind"] as? String == "local_port_in_use")
        #expect((tunnel?["message"] as? String)?.contains(holder) == true, "\(check)")
        #expect(lab.stopSupervisor() == 0, "\(lab.supervisorLog())")
    }
}
