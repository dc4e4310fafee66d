import Foundation
import Logging
import Synchronization
import WarrenCore

/// How warren's own log lines look on stderr.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-11-25T01:02:03Z warning tunnel db: connecting -> backoff kind=... hint="..."`
    case text
    /// One JSON object per line, for log collectors.
    case json
}

/// A swift-log handler writing one line per event to stderr.
public struct WarrenLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let format: LogFormat
    let label: String

    private static let lock = Mutex(())

    public init(label: String, level: Logger.Level, format: LogFormat) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    /// Installs the handler for the whole process.
    public static func bootstrap(level: Logger.Level, format: LogFormat) {
        LoggingSystem.bootstrap { WarrenLogHandler(label: $0, level: level, format: format) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let timestamp = Date().formatted(.iso8601)
        var line: String
        switch format {
        case .text:
            // One event, one line: a newline in a message or value (ssh's words, a
            // config path) must not start a line that looks like warren's own.
            line = "\(timestamp) \(event.level) \(TerminalText.escape("\(event.message)"))"
            for key in merged.keys.sorted() {
                let value = TerminalText.escape("\(merged[key]!)")
                let needsQuotes = value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) || value.isEmpty
                line += " \(key)=" + (needsQuotes ? "\"\(value.replacingOccurrences(of: "\"", with: "\\\""))\"" : value)
            }
        case .json:
            var object: [String: String] = ["ts": timestamp, "level": "\(event.level)", "msg": "\(event.message)"]
            for (key, value) in merged { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            line = TerminalText.escapeJSON(String(decoding: data, as: UTF8.self))
        }
        line += "\n"
        Self.lock.withLock { _ in
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}
