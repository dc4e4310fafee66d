import Foundation
import Synchronization
import Testing
import WarrenRuntime
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// How warren spawns, reads and reaps its children (`ChildReactor`, through
/// `SSHChild.run`), with real processes (/bin/sh) standing in for ssh: what a
/// child inherits, how its end is reported, its log apart from its stderr, and
/// that many children cost no thread each.
@Suite(.serialized) struct ChildReactorTests {
    /// Runs `script` under /bin/sh and returns its outcome and every line it wrote.
    func run(_ script: String, logPath: String? = nil) async throws -> (outcome: ChildOutcome, pid: Int32, lines: [SSHOutput]) {
        var launch = SSHLaunch(executable: "/bin/sh", arguments: ["-c", script])
        if let logPath {
            launch.logPath = logPath
            launch.environment[SSHLaunch.logVariable] = logPath
        }
        let lines = Mutex<[SSHOutput]>([])
        let pid = Mutex<Int32>(0)
        let outcome = try await SSHChild.run(
            launch, control: ChildControl(), onSpawn: { spawned in pid.withLock { $0 = spawned } },
            onOutput: { line in lines.withLock { $0.append(line) } })
        return (outcome, pid.withLock { $0 }, lines.withLock { $0 })
    }

    /// ssh gets stdin and stdout on /dev/null, stderr on warren's pipe, and no
    /// other descriptor of warren's (a log pipe, a listening socket, another
    /// tunnel's pipe); every signal at its default and none blocked, though
    /// warren itself ignores the ones it handles; a process group of its own.
    @Test func aChildInheritsOnlyItsThreeDescriptorsDefaultSignalsAndItsOwnGroup() async throws {
        // A descriptor of this process that is not close-on-exec: it must not leak.
        let leaky = open("/dev/null", O_RDONLY)
        defer { close(leaky) }
        let ignored = signal(SIGUSR2, SIG_IGN)
        defer { signal(SIGUSR2, ignored) }
        let control = ChildControl()
        // The child itself is looked at, from here, once it has exec'd sleep.
        async let outcome = SSHChild.run(SSHLaunch(executable: "/bin/sleep", arguments: ["30"]), control: control, onOutput: { _ in })
        func child() -> Int32? {
            guard let pid = control.pid, (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) == "sleep\n" else { return nil }
            return pid
        }
        // Generous: under a full parallel run the spawning task may wait for a pool thread.
        _ = await eventually(timeout: .seconds(90)) { child() != nil }
        let pid = try #require(child())
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").sorted()
        let targets = descriptors.map { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) ?? "?" }
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8).split(separator: "\n")
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        control.terminate()
        #expect(try await outcome.signal == SIGTERM)
        #expect(descriptors == ["0", "1", "2"], "descriptors of the child: \(zip(descriptors, targets).map { "\($0) -> \($1)" })")
        #expect(targets.first == "/dev/null" && targets.dropFirst().first == "/dev/null" && targets.last?.hasPrefix("pipe:") == true, "\(targets)")
        #expect(status.contains("SigIgn:\t0000000000000000"), "\(status.filter { $0.hasPrefix("Sig") })")
        #expect(status.contains("SigBlk:\t0000000000000000"), "\(status.filter { $0.hasPrefix("Sig") })")
        // stat: pid (comm) state ppid pgrp ...
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        #expect(fields.count > 3 && fields[1] == "\(getpid())" && fields[2] == "\(pid)", "parent and process group: \(stat)")
    }

    @Test func anExitCodeAndADeathBySignalAreReportedAsSuch() async throws {
        let exited = try await run("echo last words >&2; exit 3")
        #expect(exited.outcome.exitCode == 3 && exited.outcome.signal == nil)
        #expect(exited.lines == [.log("last words")], "the last line is read before the end is reported")
        let killed = try await run("kill -KILL $$")
        #expect(killed.outcome.exitCode == nil && killed.outcome.signal == SIGKILL)
    }

    @Test func aProgramThatCannotBeStartedIsAnErrorNotAChild() async throws {
        let launch = SSHLaunch(executable: "/nonexistent/ssh", arguments: ["-V"])
        await #expect(throws: SpawnError.self) {
            _ = try await SSHChild.run(launch, control: ChildControl(), onOutput: { _ in })
        }
    }

    /// With a log pipe, what the child writes there is ssh's log and what it
    /// writes on stderr is the server's text, whatever it looks like.
    @Test func theLogPipeIsReadApartFromStderr() async throws {
        let dir = try TemporaryDirectory(prefix: "reactor-")
        defer { dir.remove() }
        let log = dir.appending("ssh.log")
        let (outcome, _, lines) = try await run("""
            echo "debug1: Authenticated to bastion" >&2
            echo "debug1: Entering interactive session." > "$WARREN_SSH_LOG"
            printf 'no newline at the end' > "$WARREN_SSH_LOG"
            """, logPath: log)
        #expect(outcome.exitCode == 0)
        #expect(lines.contains(.server("debug1: Authenticated to bastion")))
        #expect(lines.contains(.log("debug1: Entering interactive session.")))
        #expect(lines.contains(.log("no newline at the end")), "the log's last line without a newline: \(lines)")
        #expect(access(log, F_OK) != 0, "the pipe is removed after the run")
    }

    /// A stop asked for while the child runs ends it; one asked for before
    /// the spawn means no spawn.
    @Test func aStopEndsTheChildAndAStopBeforeTheSpawnStartsNothing() async throws {
        let control = ChildControl()
        let launch = SSHLaunch(executable: "/bin/sh", arguments: ["-c", "echo ready >&2; exec sleep 30"])
        async let running = SSHChild.run(launch, control: control, onOutput: { _ in })
        _ = await eventually(timeout: .seconds(30)) { control.pid != nil }
        control.terminate()
        let outcome = try await running
        #expect(outcome.signal == SIGTERM)

        let early = ChildControl()
        early.kill()
        let spawned = Mutex(false)
        let none = try await SSHChild.run(launch, control: early, onSpawn: { _ in spawned.withLock { $0 = true } }, onOutput: { _ in })
        #expect(none.exitCode == nil && none.signal == nil && !spawned.withLock { $0 })
    }

    /// Two hundred children at once are spawned, read and reaped by one
    /// thread: every line of every child is delivered on the same one.
    @Test func twoHundredChildrenAreReadByOneThread() async throws {
        let readers = Readers()
        let results = try await withThrowingTaskGroup(of: ChildOutcome.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let launch = SSHLaunch(executable: "/bin/sh", arguments: ["-c", "echo child \(i) >&2; exec sleep 1"])
                    return try await SSHChild.run(launch, control: ChildControl(), onOutput: { line in
                        readers.seen.withLock { $0[pthread_self(), default: []].append(line.text) }
                    })
                }
            }
            var all: [ChildOutcome] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        #expect(results.count == 200 && results.allSatisfy { $0.exitCode == 0 })
        let seen = readers.seen.withLock { $0 }
        #expect(seen.count == 1, "threads that delivered lines: \(seen.count)")
        #expect(Set(seen.values.joined()) == Set((0..<200).map { "child \($0)" }))
    }

    final class Readers: Sendable {
        let seen = Mutex<[pthread_t: [String]]>([:])
    }
}
