import Foundation
import WarrenCore

/// How `warren retry` reaches a running supervisor: the tunnel names in
/// `<state_dir>/retry-request`, then SIGUSR1. The supervisor reads and removes
/// the file; an empty or missing file means every tunnel that waits.
/// `warren rotate` sends its tunnel the same way, as `rotated NAME` (the key
/// changed: status shows the new one, a certificate is made for it) or
/// `reconnect NAME` (`--now`: also stop and start the tunnel at once).
public enum RetryRequest {
    public static let signal = SIGUSR1

    static func path(stateDir: String) -> String { "\(stateDir)/retry-request" }

    /// What a request asks for.
    public enum Action: String, Sendable {
        case retry
        case rotated
        case reconnect
    }

    /// What the supervisor found in the file.
    struct Taken: Equatable {
        /// Tunnels to retry now; empty with `retryAll`.
        var retry: [String] = []
        var retryAll = false
        var rotated: [String] = []
        var reconnect: [String] = []
    }

    /// Writes the request and signals the supervisor (only a warren process).
    public static func send(_ names: [String], stateDir: String, supervisorPid: Int32, action: Action = .retry) throws {
        guard let argv = ProcessInfoReader.commandLine(supervisorPid), argv.contains("run"),
            argv.first.map({ ($0 as NSString).lastPathComponent.hasPrefix("warren") }) == true
        else {
            throw CommandError("process \(supervisorPid) holds \(stateDir)/warren.lock but is not `warren run`")
        }
        let prefix = action == .retry ? "" : action.rawValue + " "
        try AtomicFile.write(names.map { prefix + $0 + "\n" }.joined(), to: path(stateDir: stateDir), mode: 0o600)
        guard kill(supervisorPid, signal) == 0 else {
            throw CommandError("cannot signal supervisor \(supervisorPid): \(String(cString: strerror(errno)))")
        }
    }

    /// The supervisor's side: what was asked for, and the request removed.
    static func take(stateDir: String) -> Taken {
        let path = path(stateDir: stateDir)
        defer { unlink(path) }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return Taken(retryAll: true) }
        return parse(text)
    }

    static func parse(_ text: String) -> Taken {
        var taken = Taken()
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", maxSplits: 1).map(String.init)
            let (action, name) = words.count == 2 ? (Action(rawValue: words[0]), words[1]) : (.retry, words[0])
            guard let action, ValueRules.tunnelNameReason(name) == nil else { continue }
            switch action {
            case .retry: taken.retry.append(name)
            case .rotated: taken.rotated.append(name)
            case .reconnect: taken.reconnect.append(name)
            }
        }
        taken.retryAll = taken.retry.isEmpty && taken.rotated.isEmpty && taken.reconnect.isEmpty
        return taken
    }
}

/// A failure already worded for the user.
public struct CommandError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
