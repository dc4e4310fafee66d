import Foundation
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// How a short helper (ssh-keygen, ssh-keyscan) ended, with all it printed.
public struct ToolResult: Sendable {
    /// The exit code, or nil when a signal ended it.
    public var exitCode: Int32?
    public var stdout: String
    public var stderr: String
    /// It ran past its time limit and was killed.
    public var timedOut: Bool

    public var succeeded: Bool { exitCode == 0 && !timedOut }
}

/// Runs OpenSSH's helper programs to their end, with a time limit.
public enum ToolCommand {
    /// Runs `executable` with `arguments`, stdin closed, reading stdout and
    /// stderr concurrently (a full pipe would block the child). After `timeout`
    /// seconds the child's process group is killed.
    /// `environment` adds to the allowed part of warren's (`ssh-add -l` needs the agent's socket).
    public static func run(_ executable: String, _ arguments: [String], timeout: Double, environment: [String: String] = [:]) async throws -> ToolResult {
        var options = PlatformOptions()
        options.processGroupID = 0
        // The same short allow-list as ssh's (SSHLaunch.inheritedVariables).
        var changes = SSHLaunch.isolated
        for (key, value) in environment { changes[key] = value }
        let allowed = SSHLaunch.childEnvironment(changes)
        let configuration = Configuration(
            executable: .path(FilePath(executable)), arguments: Arguments(arguments),
            environment: .custom(Dictionary(uniqueKeysWithValues: allowed.map { (Environment.Key(rawValue: $0.key)!, $0.value) })),
            platformOptions: options)
        let result = try await Subprocess.run(configuration, input: .none, output: .sequence, error: .sequence) { execution in
            try await withThrowingTaskGroup(of: (Int, String).self) { group in
                group.addTask { (1, try await collect(execution.standardOutput)) }
                group.addTask { (2, try await collect(execution.standardError)) }
                group.addTask {
                    try? await Task.sleep(for: .seconds(timeout))
                    guard !Task.isCancelled else { return (0, "") }
                    try? execution.send(signal: .kill, toProcessGroup: true)
                    return (3, "")
                }
                var out = "", err = "", timedOut = false
                var pending = 2
                while pending > 0, let (which, text) = try await group.next() {
                    switch which {
                    case 1: out = text; pending -= 1
                    case 2: err = text; pending -= 1
                    case 3: timedOut = true
                    default: break
                    }
                }
                group.cancelAll()
                while let (which, _) = try await group.next() { if which == 3 { timedOut = true } }
                return (out, err, timedOut)
            }
        }
        let (stdout, stderr, timedOut) = result.closureResult
        var exitCode: Int32?
        if case .exited(let code) = result.terminationStatus { exitCode = code }
        return ToolResult(exitCode: exitCode, stdout: stdout, stderr: stderr, timedOut: timedOut)
    }

    private static func collect(_ sequence: SubprocessOutputSequence) async throws -> String {
        var text = ""
        for try await line in sequence.strings() {
            var scalars = Substring(line).unicodeScalars
            while let last = scalars.last, last == "\n" || last == "\r" { scalars.removeLast() }
            text += String(scalars) + "\n"
        }
        return text
    }

    /// The first executable `name` on PATH, else nil.
    public static func which(_ name: String) -> String? {
        LaunchTools.which(name)
    }

    /// An OpenSSH helper: on PATH, else beside the ssh binary, else /usr/bin.
    public static func openSSHTool(_ name: String, sshBinary: String?) -> String {
        if let sshBinary, sshBinary.hasPrefix("/") {
            let sibling = (sshBinary as NSString).deletingLastPathComponent + "/" + name
            if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        }
        return which(name) ?? "/usr/bin/\(name)"
    }
}
