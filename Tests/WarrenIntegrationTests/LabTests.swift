import Foundation
import Testing
import WarrenCore
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Proves the lab: whatever it started is gone after `stop()`, also when the
/// test threw halfway, and nothing it did not start is touched.
@Suite(.serialized)
struct LabTests {
    /// What a lab had running, read before it was stopped.
    struct Seen {
        var pids: [pid_t] = []
        var paths: [String] = []
        var ports: [Int] = []
        var stateDir = ""
    }

    @Test func withLabStopsEverythingItStartedEvenWhenTheBodyThrows() async throws {
        struct Boom: Error {}
        var seen = Seen()
        await #expect(throws: Boom.self) {
            try await withLab(Lab()) { lab in
                let second = try lab.startSSHD()
                let extra = try lab.makeDirectory(prefix: "lab-extra-")
                let sleeper = try lab.spawn("/bin/sleep", ["600"], log: "sleep.log")
                let (warren, port) = try lab.startOneTunnel()
                seen.stateDir = lab.stateDir
                seen.pids = [lab.sshd.listenerPID, second.listenerPID, sleeper.pid, warren.process.pid, warren.sshPID("db")].compactMap { $0 }
                seen.paths = [lab.directory.path, extra.path, lab.sshd.directory.path, second.directory.path]
                seen.ports = [port, lab.target.port, lab.sshd.port, second.port]
                throw Boom()
            }
        }
        #expect(seen.pids.count == 5, "every process was running: \(seen.pids)")
        for pid in seen.pids {
            #expect(!ProcessTable.exists(pid), "pid \(pid) still exists: \(String(describing: ProcessTable.entry(pid)))")
        }
        #expect(ProcessTable.processes(withCmdlineContaining: seen.stateDir).isEmpty, "no ssh on the lab's files is left")
        for path in seen.paths { #expect(!FileManager.default.fileExists(atPath: path), "\(path) was removed") }
        for port in seen.ports { #expect(!FreePort.isListening(port), "nothing listens on \(port)") }
    }

    @Test func stopEndsOnlyWhatTheLabStartedAndIsSafeTwice() throws {
        let outside = try TemporaryDirectory(prefix: "lab-outside-")
        defer { outside.remove() }
        let outsider = try SpawnedProcess.spawn("/bin/sleep", ["600"], log: outside.appending("sleep.log"))
        defer { outsider.terminate() }
        let target = try TCPTarget.start()
        defer { target.stop() }

        let lab = try Lab(sshd: nil)
        let sleeper = try lab.spawn("/bin/sleep", ["600"], log: "sleep.log")
        lab.stop()
        lab.stop()
        #expect(!ProcessTable.exists(sleeper.pid))
        #expect(outsider.isAlive, "a process the lab did not start runs on")
        #expect(target.isListening && FreePort.isListening(target.port), "a target the lab did not start still listens")
        #expect(FileManager.default.fileExists(atPath: outside.path))
    }

    @Test func supervisorsShareTheLabsConfigAndStateUnlessTold() throws {
        let lab = try Lab()
        defer { lab.stop() }
        let local = try lab.forward()
        let first = try lab.startSupervisor(config: SupervisorConfig.tunnel("db", sshd: lab.sshd, local: [local.spec]))
        #expect(first.configPath == lab.configPath && first.stateDir == lab.stateDir)
        try require(first.waitForState("db", .up), "db up", first)
        #expect(lab.statusReport()?.supervisorPid == first.process.pid)
        #expect(lab.stopSupervisor() == 0, "warren run stops cleanly: \(first.logText())")

        let shard = try lab.startSupervisor(name: "other", stateDir: lab.directory.appending("other"))
        #expect(shard.configPath == lab.configPath && shard.stateDir == lab.directory.appending("other"))
        #expect(lab.supervisor(named: "other") === shard && lab.supervisor(named: "warren") === first)
        #expect(lab.supervisors.count == 2)
        try require(shard.waitForState("db", .up), "db up again", shard)
    }
}
