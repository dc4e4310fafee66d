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

    /// Parses TOML text. A syntax error carries its line and column.
    public static func parse(_ text: String) throws(ConfigIssue) -> [String: TOMLNode] {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigIssue(
                line: error.source.begin.line, column: error.source.begin.column,
                message: "TOML syntax error: \(error.description)")
        } catch {
            throw ConfigIssue(path: "", message: "TOML syntax error: \(error)")
        }
        return convert(table)
    }

    private static func convert(_ table: TOMLTable) -> [String: TOMLNode] {
        var out: [String: TOMLNode] = [:]
        for (key, value) in table {
            out[key] = convert(value)
        }
        return out
    }

    private static func convert(_ value: any TOMLValueConvertible) -> TOMLNode {
        switch value.type {
        case .string: return .string(value.string ?? "")
        case .int: return .int(value.int ?? 0)
        case .double: return .double(value.double ?? 0)
        case .bool: return .bool(value.bool ?? false)
        case .array: return .array((value.array ?? TOMLArray()).map { convert($0) })
        case .table: return .table(convert(value.table ?? TOMLTable()))
        case .date, .time, .dateTime: return .other(typeName: value.type.description)
        }
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
