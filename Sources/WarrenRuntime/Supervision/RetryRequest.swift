import Foundation
import WarrenCore

/// How `warren retry` reaches a running supervisor: the tunnel names in
/// `<state_dir>/retry-request`, then SIGUSR1. The supervisor reads and removes
/// the file; an empty or missing file means every tunnel that waits.
public enum RetryRequest {
    public static let signal = SIGUSR1

    static func path(stateDir: String) -> String { "\(stateDir)/retry-request" }

    /// Writes the request and signals the supervisor (only a warren process).
    public static func send(_ names: [String], stateDir: String, supervisorPid: Int32) throws {
        guard let argv = ProcessInfoReader.commandLine(supervisorPid), argv.contains("run"),
            argv.first.map({ ($0 as NSString).lastPathComponent.hasPrefix("warren") }) == true
        else {
            throw CommandError("process \(supervisorPid) holds \(stateDir)/warren.lock but is not `warren run`")
        }
        try AtomicFile.write(names.map { $0 + "\n" }.joined(), to: path(stateDir: stateDir), mode: 0o600)
        guard kill(supervisorPid, signal) == 0 else {
            throw CommandError("cannot signal supervisor \(supervisorPid): \(String(cString: strerror(errno)))")
        }
    }

    /// The supervisor's side: the names asked for (empty: all), and the request removed.
    static func take(stateDir: String) -> [String] {
        let path = path(stateDir: stateDir)
        defer { unlink(path) }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map(String.init).filter { ValueRules.tunnelNameReason($0) == nil }
    }
}

/// A failure already worded for the user.
public struct CommandError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
