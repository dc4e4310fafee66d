import TOMLKit

/// A parsed TOML value, copied out of TOMLKit into plain Swift values so that
/// validation can walk it, name every key path and report wrong types itself
/// (TOMLKit's decoder reports a wrong type as a missing key).
public indirect enum TOMLNode: Sendable, Equatable {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case array([TOMLNode])
    case table([String: TOMLNode])
    /// Dates and times: valid TOML that no warren key takes.
    case other(typeName: String)

    /// Deeper than any warren config (`tunnels.NAME.jump[N].KEY` is 5): the
    /// file controls the depth, so a limit keeps conversion off a deep stack.
    public static let maxDepth = 32

    /// Stands for an escaped NUL while TOMLKit parses: TOMLKit hands strings
    /// over as C strings, which would silently cut a value at the NUL. A
    /// noncharacter, refused in every value anyway.
    static let nulStandIn = Unicode.Scalar(0xFDD0)!

    /// Parses TOML text. A syntax error carries its line and column; a raw NUL
    /// byte its line; an escaped NUL (`\u0000`) the key path of its value.
    public static func parse(_ text: String) throws(ConfigIssue) -> [String: TOMLNode] {
        if let issue = rawNUL(in: text) { throw issue }
        let masked = text.replacingOccurrences(of: "\\u0000", with: "\\uFDD0")
            .replacingOccurrences(of: "\\U00000000", with: "\\uFDD0")
        let table: TOMLTable
        do {
            table = try TOMLTable(string: masked)
        } catch let error as TOMLParseError {
            throw ConfigIssue(
                line: error.source.begin.line, column: error.source.begin.column,
                message: "TOML syntax error: \(error.description)")
        } catch {
            throw ConfigIssue(path: "", message: "TOML syntax error: \(error)")
        }
        return try convert(table, path: [], depth: 0)
    }

    /// A NUL byte in the file would end TOMLKit's reading of it there, and
    /// everything after it (a whole table, in a comment) would be ignored.
    static func rawNUL(in text: String) -> ConfigIssue? {
        guard text.utf8.contains(0) else { return nil }
        var line = 1
        var column = 1
        for byte in text.utf8 {
            if byte == 0 { break }
            if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
        }
        return ConfigIssue(line: line, column: column, message: "a NUL byte is not allowed in a config file (is it a text file?)")
    }

    private static func convert(_ table: TOMLTable, path: [String], depth: Int) throws(ConfigIssue) -> [String: TOMLNode] {
        var out: [String: TOMLNode] = [:]
        for (key, value) in table {
            let here = path + [key]
            if key.unicodeScalars.contains(nulStandIn) { throw nulIssue(path) }
            out[key] = try convert(value, path: here, depth: depth + 1)
        }
        return out
    }

    private static func convert(_ value: any TOMLValueConvertible, path: [String], depth: Int) throws(ConfigIssue) -> TOMLNode {
        if depth > maxDepth {
            throw ConfigIssue(
                path: keyPath(path.prefix(3)) + "...",
                message: "keys nested deeper than \(maxDepth) levels: no warren setting is that deep")
        }
        switch value.type {
        case .string:
            let string = value.string ?? ""
            if string.unicodeScalars.contains(nulStandIn) { throw nulIssue(path) }
            return .string(string)
        case .int: return .int(value.int ?? 0)
        case .double: return .double(value.double ?? 0)
        case .bool: return .bool(value.bool ?? false)
        case .array:
            var items: [TOMLNode] = []
            for (index, item) in (value.array ?? TOMLArray()).enumerated() {
                items.append(try convert(item, path: path + ["[\(index)]"], depth: depth + 1))
            }
            return .array(items)
        case .table: return .table(try convert(value.table ?? TOMLTable(), path: path, depth: depth))
        case .date, .time, .dateTime: return .other(typeName: value.type.description)
        }
    }

    /// `tunnels.db.jump[0].host` from its parts (an index is a part of its own).
    private static func keyPath(_ parts: ArraySlice<String>) -> String {
        parts.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
    }

    private static func nulIssue(_ path: [String]) -> ConfigIssue {
        ConfigIssue(path: keyPath(path[...]), message: "a NUL character (\\u0000) is not allowed in any value or key")
    }

    /// How the value's type is named in error messages.
    public var typeName: String {
        switch self {
        case .string: return "a string"
        case .int: return "an integer"
        case .double: return "a float"
        case .bool: return "a boolean"
        case .array: return "an array"
        case .table: return "a table"
        case .other(let name): return "a \(name)"
        }
    }
}
