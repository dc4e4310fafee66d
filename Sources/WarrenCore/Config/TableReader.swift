/// Collects issues while config tables are read.
final class IssueLog {
    private(set) var issues: [ConfigIssue] = []
    /// The file being read, when it is not the main config file (an `include`d one):
    /// every issue logged meanwhile names it.
    var file: String?

    func add(_ path: String, _ message: String, file: String? = nil) {
        var issue = ConfigIssue(path: path, message: message)
        issue.file = file ?? self.file
        issues.append(issue)
    }

    func add(_ issue: ConfigIssue) {
        var issue = issue
        if issue.file == nil { issue.file = file }
        issues.append(issue)
    }
}

/// Reads typed values out of one TOML table, naming each key by its full path
/// and logging wrong types, unknown keys and bad values instead of stopping.
struct TableReader {
    let prefix: String
    let table: [String: TOMLNode]
    let log: IssueLog

    func path(_ key: String) -> String { prefix.isEmpty ? key : "\(prefix).\(key)" }

    /// Logs every key that is not in `allowed`, with a suggestion when one is close.
    func rejectUnknownKeys(allowed: [String], context: String) {
        for key in table.keys.sorted() where !allowed.contains(key) {
            var message = "unknown key \"\(TerminalText.escape(key))\" in \(context)"
            if let guess = DidYouMean.suggestion(for: key, among: allowed) {
                message += "; did you mean \"\(guess)\"?"
            } else {
                message += "; allowed: \(allowed.joined(separator: ", "))"
            }
            log.add(path(key), message)
        }
    }

    func string(_ key: String) -> String? {
        guard let node = table[key] else { return nil }
        guard case .string(let value) = node else {
            log.add(path(key), "must be a string, not \(node.typeName)")
            return nil
        }
        return value
    }

    func bool(_ key: String) -> Bool? {
        guard let node = table[key] else { return nil }
        guard case .bool(let value) = node else {
            log.add(path(key), "must be true or false, not \(node.typeName)")
            return nil
        }
        return value
    }

    /// An integer within `range`.
    func int(_ key: String, in range: ClosedRange<Int>, unit: String = "") -> Int? {
        guard let node = table[key] else { return nil }
        guard case .int(let value) = node else {
            log.add(path(key), "must be an integer\(unit), not \(node.typeName)")
            return nil
        }
        guard range.contains(value) else {
            log.add(path(key), "\(value) is out of range; allowed: \(range.lowerBound)-\(range.upperBound)\(unit)")
            return nil
        }
        return value
    }

    /// A number of seconds (integer or float) within `range`.
    func seconds(_ key: String, in range: ClosedRange<Double>) -> Double? {
        guard let node = table[key] else { return nil }
        let value: Double
        switch node {
        case .int(let i): value = Double(i)
        case .double(let d): value = d
        default:
            log.add(path(key), "must be a number of seconds, not \(node.typeName)")
            return nil
        }
        guard range.contains(value), value.isFinite else {
            log.add(path(key), "\(value) is out of range; allowed: \(range.lowerBound)-\(range.upperBound) seconds")
            return nil
        }
        return value
    }

    /// A string or an array of strings (both forms are accepted for list keys).
    func strings(_ key: String) -> [(path: String, value: String)]? {
        guard let node = table[key] else { return nil }
        switch node {
        case .string(let s):
            return [(path(key), s)]
        case .array(let items):
            var out: [(String, String)] = []
            for (i, item) in items.enumerated() {
                guard case .string(let s) = item else {
                    log.add("\(path(key))[\(i)]", "must be a string, not \(item.typeName)")
                    continue
                }
                out.append(("\(path(key))[\(i)]", s))
            }
            return out
        default:
            log.add(path(key), "must be a string or an array of strings, not \(node.typeName)")
            return nil
        }
    }

    func table(_ key: String) -> TableReader? {
        guard let node = table[key] else { return nil }
        guard case .table(let t) = node else {
            log.add(path(key), "must be a table, not \(node.typeName)")
            return nil
        }
        return TableReader(prefix: path(key), table: t, log: log)
    }

    /// An array of tables (`[[tunnels.x.jump]]`).
    func tables(_ key: String) -> [TableReader]? {
        guard let node = table[key] else { return nil }
        guard case .array(let items) = node else {
            log.add(path(key), "must be an array of tables ([[\(path(key))]]), not \(node.typeName)")
            return nil
        }
        var out: [TableReader] = []
        for (i, item) in items.enumerated() {
            guard case .table(let t) = item else {
                log.add("\(path(key))[\(i)]", "must be a table, not \(item.typeName)")
                continue
            }
            out.append(TableReader(prefix: "\(path(key))[\(i)]", table: t, log: log))
        }
        return out
    }
}
