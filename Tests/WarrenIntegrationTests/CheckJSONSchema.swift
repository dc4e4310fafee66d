import Foundation
import Testing

/// The key table of docs/check-json.md, read as a schema: every check test
/// holds `warren check --json` output against it, so the document cannot
/// drift from the program in either direction.
struct CheckJSONSchema {
    struct Key {
        var path: String
        /// JSON types allowed: string, integer, number, boolean, object, array, null.
        var types: Set<String>
        /// The values allowed, when the document lists them.
        var values: [String]
    }

    let keys: [String: Key]

    static let documentPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/check-json.md").path

    static func load() throws -> CheckJSONSchema {
        let text = try String(contentsOfFile: documentPath, encoding: .utf8)
        var keys: [String: Key] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            // "", key, type, values, meaning, ""
            guard cells.count >= 5 else { continue }
            let path = cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            var types = Set(cells[2].components(separatedBy: " or "))
            if types.contains("number") { types.insert("integer") }
            let values = cells[3].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "`")) }
            keys[path] = Key(path: path, types: types, values: values)
        }
        return CheckJSONSchema(keys: keys)
    }

    /// The documented values of `path`.
    func values(_ path: String) -> [String] { keys[path]?.values ?? [] }

    /// Checks one JSON text; records an issue for every mismatch and returns the object.
    @discardableResult
    func validate(_ json: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "not a JSON object: \(json)", sourceLocation: sourceLocation)
        var seen: Set<String> = []
        walk(object, prefix: "", seen: &seen, sourceLocation: sourceLocation)
        // Documented keys under an object that is present must be present too.
        for path in keys.keys where !seen.contains(path) {
            let parent = path.split(separator: ".").dropLast().joined(separator: ".")
            if parent.isEmpty || seen.contains(parent) && !isNullOrEmpty(parent, in: object) {
                Issue.record("documented key \(path) is missing from: \(json)", sourceLocation: sourceLocation)
            }
        }
        return object
    }

    private func isNullOrEmpty(_ path: String, in object: [String: Any]) -> Bool {
        // Keys inside an array's elements or a null object cannot be seen when there are none.
        var current: [Any] = [object]
        for part in path.split(separator: ".") {
            let name = part.hasSuffix("[]") ? String(part.dropLast(2)) : String(part)
            current = current.compactMap { ($0 as? [String: Any])?[name] }
            if part.hasSuffix("[]") { current = current.flatMap { ($0 as? [Any]) ?? [] } }
        }
        return current.isEmpty || current.allSatisfy { $0 is NSNull }
    }

    private func walk(_ value: Any, prefix: String, seen: inout Set<String>, sourceLocation: SourceLocation) {
        guard let object = value as? [String: Any] else { return }
        for (name, child) in object {
            let path = prefix.isEmpty ? name : "\(prefix).\(name)"
            seen.insert(path)
            guard let key = keys[path] else {
                Issue.record("key \(path) is not documented in docs/check-json.md", sourceLocation: sourceLocation)
                continue
            }
            let type = Self.type(of: child)
            #expect(key.types.contains(type), "\(path) is \(type), documented as \(key.types.sorted())", sourceLocation: sourceLocation)
            if !key.values.isEmpty, type != "null" {
                #expect(key.values.contains("\(child)"), "\(path) = \(child) is not one of \(key.values)", sourceLocation: sourceLocation)
            }
            if let array = child as? [Any] {
                seen.insert(path + "[]")
                for element in array { walk(element, prefix: path + "[]", seen: &seen, sourceLocation: sourceLocation) }
            } else {
                walk(child, prefix: path, seen: &seen, sourceLocation: sourceLocation)
            }
        }
    }

    static func type(of value: Any) -> String {
        switch value {
        case is NSNull: return "null"
        case is String: return "string"
        case is [Any]: return "array"
        case is [String: Any]: return "object"
        case let number as NSNumber:
            // JSON's true and false come back as NSNumber too, of C type char.
            if String(cString: number.objCType) == "c" { return "boolean" }
            // A number is an integer when it prints as one.
            return number.doubleValue == number.doubleValue.rounded() && !"\(number)".contains(".") ? "integer" : "number"
        default: return "unknown"
        }
    }
}
