/// `include = ["tunnels.d/*.toml"]`: tunnels kept in files of their own, one per
/// customer as provisioning tools write them. The runtime globs and reads
/// (`ConfigContext.expandInclude`); here each file is parsed and checked, and
/// every issue names the file it is in.
extension ConfigLoader {
    /// Where `[tunnels.NAME]` tables were read from.
    struct TunnelSource {
        var file: String
        var text: String
        var tunnels: TableReader?
        var isMain: Bool
    }

    /// Where one tunnel is defined, for "defined twice" errors.
    struct TunnelOrigin: CustomStringConvertible {
        var file: String
        var line: Int?
        var isMain: Bool
        /// Escaped: an included file's name comes from the file system (a name may hold a newline).
        var description: String { TerminalText.escape(line.map { "\(file):\($0)" } ?? file) }
    }

    /// The tunnels of the main file and every included one; a name defined twice
    /// is an issue naming both places.
    func readTunnels(
        from sources: [TunnelSource], inherited: Inheritable, stateDir: String, log: IssueLog
    ) -> ([TunnelConfig], [String: TunnelOrigin]) {
        var tunnels: [TunnelConfig] = []
        var origins: [String: TunnelOrigin] = [:]
        for source in sources {
            log.file = source.isMain ? nil : source.file
            defer { log.file = nil }
            guard let tunnelTable = source.tunnels else { continue }
            // One pass over the text for every tunnel's line (a lookup per tunnel
            // was quadratic: 12 s to load a thousand tunnels).
            let lines = Self.definitionLines(in: source.text)
            for name in tunnelTable.table.keys.sorted() {
                if let reason = ValueRules.tunnelNameReason(name) {
                    log.add("tunnels.\"\(TerminalText.escape(name))\"", reason)
                    continue
                }
                let origin = TunnelOrigin(file: source.file, line: lines[name], isMain: source.isMain)
                if let first = origins[name] {
                    log.add("tunnels.\(name)", "is defined twice: at \(first) and at \(origin); each tunnel is defined once")
                    continue
                }
                origins[name] = origin
                guard let reader = tunnelTable.table(name) else { continue }
                if let tunnel = readTunnel(name: name, reader, inherited: inherited, stateDir: stateDir) {
                    tunnels.append(tunnel)
                }
            }
        }
        return (tunnels, origins)
    }

    /// Reads every file the `include` patterns match. An included file holds only
    /// `[tunnels.NAME]` tables; they inherit the main file's `[defaults]`.
    func readIncludes(_ top: TableReader) -> [TunnelSource] {
        guard let patterns = top.strings("include") else { return [] }
        var sources: [TunnelSource] = []
        var seen: Set<String> = []
        for entry in patterns {
            guard let pattern = checkedPath(entry.value, at: entry.path, top.log) else { continue }
            let files = context.expandInclude(pattern)
            if files.isEmpty && !Self.hasGlob(pattern) {
                top.log.add(entry.path, "\(pattern) does not exist; include takes files or glob patterns relative to the main file")
            }
            for included in files where seen.insert(included.path).inserted {
                if let source = readIncluded(included, log: top.log) { sources.append(source) }
            }
        }
        return sources
    }

    private func readIncluded(_ included: IncludedFile, log: IssueLog) -> TunnelSource? {
        guard let text = included.text else {
            log.add("", "the included file \(included.problem ?? "cannot be read")", file: included.path)
            return nil
        }
        // TOMLNode.parse refuses NULs and too deep nesting (naming where), as for the main file.
        var issue: ConfigIssue?
        let root: [String: TOMLNode]
        do {
            root = try TOMLNode.parse(text)
        } catch {
            issue = issue ?? error
            root = [:]
        }
        if var issue {
            issue.file = included.path
            log.add(issue)
            return nil
        }
        let reader = TableReader(prefix: "", table: root, log: log)
        log.file = included.path
        reader.rejectUnknownKeys(allowed: ["tunnels"], context: "an included file (settings belong in the main file)")
        let tunnels = reader.table("tunnels")
        log.file = nil
        return TunnelSource(file: included.path, text: text, tunnels: tunnels, isMain: false)
    }

    /// `[defaults]`: what every tunnel inherits, and the shared bastion if named.
    func readDefaults(_ defaults: TableReader, stateDir: String) -> Inheritable {
        var inherited = readInheritable(defaults, stateDir: stateDir, tunnelName: nil)
        if defaults.table["host"] != nil {
            let host = readHost(defaults, role: "the shared bastion's")
            inherited.host = host.isEmpty ? nil : host
        }
        if defaults.table["host_key"] != nil {
            inherited.hostPins = readHostKeys(defaults, policy: inherited.hostKeyPolicy ?? .pinned)
        }
        return inherited
    }

    static func hasGlob(_ pattern: String) -> Bool {
        pattern.contains { $0 == "*" || $0 == "?" || $0 == "[" }
    }

    /// For each name a table header may define (`[tunnels.NAME]`,
    /// `[tunnels.NAME.x]`, `[[tunnels.NAME.jump]]`), the line of the first such
    /// header, for messages. Quotes are dropped, so a header `[tunnels.a.b]`
    /// stands for both `a` and `a.b` (a quoted name may hold a dot). A tunnel
    /// written as an inline table or with dotted keys has no line.
    public static func definitionLines(in text: String) -> [String: Int] {
        var lines: [String: Int] = [:]
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let header = line.filter { $0 != " " && $0 != "\t" && $0 != "\"" && $0 != "'" }
            guard header.hasPrefix("[") else { continue }
            let inner = header.drop { $0 == "[" }
            guard inner.hasPrefix("tunnels.") else { continue }
            let rest = inner.dropFirst("tunnels.".count)
            guard let end = rest.firstIndex(of: "]") else { continue }
            let path = rest[..<end]
            // Every prefix that ends where a part ends: a, a.b, a.b.c.
            for (offset, character) in path.enumerated() where character == "." {
                let name = String(path.prefix(offset))
                if lines[name] == nil { lines[name] = index + 1 }
            }
            if lines[String(path)] == nil { lines[String(path)] = index + 1 }
        }
        return lines
    }
}
