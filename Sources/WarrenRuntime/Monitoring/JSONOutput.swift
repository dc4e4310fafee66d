import Foundation
import WarrenCore

/// How warren prints JSON for people and scripts alike: pretty, keys sorted
/// (stable diffs), slashes unescaped, a final newline; no character a
/// terminal would act on appears raw (`TerminalText.escapeJSON`).
public enum JSONOutput {
    public static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return TerminalText.escapeJSON(String(decoding: data, as: UTF8.self)) + "\n"
    }
}
