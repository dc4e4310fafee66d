import Foundation

extension SpawnedProcess {
    /// Runs a short command to its end and returns its status and output
    /// (stdout and stderr together, via `log`, which is emptied first).
    ///
    /// - Throws: if it cannot start, or still runs after `timeout` (it is then
    ///   killed and reaped).
    public static func run(
        _ path: String,
        _ args: [String],
        environment: [String: String]? = nil,
        log: String,
        timeout: Duration = .seconds(30)
    ) throws -> (status: Int32, output: String) {
        try? FileManager.default.removeItem(atPath: log)
        let child = try spawn(path, args, environment: environment, log: log)
        guard let status = child.waitForExit(timeout: timeout) else {
            child.terminate(grace: .zero)
            throw FixtureError("\(path) \(args.joined(separator: " ")) still ran after \(timeout)")
        }
        return (status, child.logText())
    }
}
