/// One thing wrong with a config file: where (a key path such as
/// `tunnels.warehouse.port`, or the line and column of a syntax error) and what.
public struct ConfigIssue: Error, Sendable, Equatable, CustomStringConvertible {
    /// Dotted key path; empty for whole-file problems and syntax errors.
    public var path: String
    public var line: Int?
    public var column: Int?
    /// What is wrong and what is allowed.
    public var message: String
    /// The file the issue is in, when it is not the main config file (a file
    /// pulled in by `include`); nil means `ConfigError.file`.
    public var file: String?

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public init(line: Int, column: Int, message: String) {
        self.path = ""
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        if let line, let column { return "\(line):\(column): \(message)" }
        return path.isEmpty ? message : "\(path): \(message)"
    }
}

/// Every issue found in one config file. Validation collects them all, so a
/// user fixes the file in one pass.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var issues: [ConfigIssue]

    public init(file: String, issues: [ConfigIssue]) {
        self.file = file
        self.issues = issues
    }

    /// One line per issue, each starting with the file, as compilers do:
    /// `warren.toml: tunnels.db.port: ...` or `warren.toml:3:7: ...`.
    public var description: String {
        issues.map { issue in
            // The file's path comes from outside too (a directory name may hold a newline).
            let file = TerminalText.escape(issue.file ?? self.file)
            if issue.line != nil { return "\(file):\(issue)" }
            return "\(file): \(issue)"
        }.joined(separator: "\n")
    }
}
