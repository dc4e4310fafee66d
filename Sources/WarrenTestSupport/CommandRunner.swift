import Foundation
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// What a finished command printed and how it ended.
public struct CommandResult: Sendable, CustomStringConvertible {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
}

/// Runs short commands (the real `warren` binary, ssh -G, ssh-keygen) to completion.
public enum CommandRunner {
    /// Runs `path` with `arguments`; a signal death is reported as 128 + the signal.
    public static func run(_ path: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
        let env: Environment = environment.isEmpty ? .inherit : .inherit.updating(environment.reduce(into: [:]) { $0[.init(rawValue: $1.key)!] = $1.value })
        let result = try await Subprocess.run(
            .path(FilePath(path)), arguments: Arguments(arguments), environment: env,
            output: .string(limit: 4 << 20), error: .string(limit: 4 << 20))
        let status: Int32
        switch result.terminationStatus {
        case .exited(let code): status = code
        case .signaled(let signal): status = 128 + signal
        }
        return CommandResult(status: status, stdout: result.standardOutput, stderr: result.standardError)
    }

    /// The `warren` executable built beside the test bundle (or $WARREN_BIN).
    public static var warrenBinary: String {
        if let explicit = ProcessInfo.processInfo.environment["WARREN_BIN"] { return explicit }
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = here.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("warren").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/warren").path
    }

    /// Runs the real `warren` binary.
    public static func warren(_ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
        try await run(warrenBinary, arguments, environment: environment)
    }
}
