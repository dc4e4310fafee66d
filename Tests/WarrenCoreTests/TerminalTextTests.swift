import Foundation
import Testing
import WarrenCore

/// The one escaping function (finding 6): every character a terminal acts on
/// is escaped, everything else is left alone, and JSON stays the same JSON.
@Suite struct TerminalTextTests {
    @Test(arguments: [
        ("\u{1b}[2J", "\\u{1b}[2J"),
        ("a\nb", "a\\u{a}b"),
        ("a\rb\tc", "a\\u{d}b\\u{9}c"),
        ("\u{7f}", "\\u{7f}"),
        ("\u{9b}31m", "\\u{9b}31m"),  // C1 CSI
        ("\u{9d}0;title\u{9c}", "\\u{9d}0;title\\u{9c}"),  // C1 OSC ... ST
        ("\u{85}", "\\u{85}"),  // NEL
        ("abc\u{202e}cba", "abc\\u{202e}cba"),  // RLO
        ("\u{202a}\u{202b}\u{202c}\u{202d}", "\\u{202a}\\u{202b}\\u{202c}\\u{202d}"),
        ("\u{2066}\u{2067}\u{2068}\u{2069}", "\\u{2066}\\u{2067}\\u{2068}\\u{2069}"),  // isolates
        ("\u{200e}\u{200f}\u{200b}", "\\u{200e}\\u{200f}\\u{200b}"),
        ("\u{2028}\u{2029}", "\\u{2028}\\u{2029}"),
        ("plain ASCII 'quoted' \\ ok", "plain ASCII 'quoted' \\ ok"),
        ("é, 日本, 🙂", "é, 日本, 🙂"),
    ])
    func escapes(_ input: String, _ expected: String) {
        #expect(TerminalText.escape(input) == expected)
    }

    @Test func keepingLinesKeepsOnlyNewlineAndTab() {
        #expect(TerminalText.escape("a\n\tb\u{1b}c\r", keepingLines: true) == "a\n\tb\\u{1b}c\\u{d}")
    }

    @Test func jsonStaysTheSameJSON() throws {
        let value = ["message": "x\u{9b}y\u{202e}z\u{1b}"]
        let raw = String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
        let escaped = TerminalText.escapeJSON(raw)
        #expect(!escaped.unicodeScalars.contains { TerminalText.needsEscape($0) })
        #expect(escaped.contains("\\u009b") && escaped.contains("\\u202e"))
        #expect(try JSONDecoder().decode([String: String].self, from: Data(escaped.utf8)) == value)
    }
}
