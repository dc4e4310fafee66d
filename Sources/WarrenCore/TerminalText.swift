/// The one escaping function for everything warren prints that came from
/// outside (ssh, servers, /proc, config values, file names): nothing in it can
/// move the cursor, clear the screen, recolour, reorder or fake a line.
///
/// Escaped, as `\u{…}`: C0 controls and DEL (ESC starts every terminal
/// sequence), C1 controls U+0080-U+009F (CSI U+009B and OSC U+009D are
/// sequences on their own in many terminals), and every Unicode format,
/// line-separator and paragraph-separator character (the bidi overrides
/// U+202A-U+202E and isolates U+2066-U+2069, U+200E/U+200F, zero-width
/// characters, U+2028/U+2029), which reorder or hide text.
public enum TerminalText {
    /// `value` with every character a terminal could interpret escaped. With
    /// `keepingLines`, newlines and tabs stay (for warren's own multi-line
    /// reports, whose outside values were escaped whole already).
    public static func escape(_ value: String, keepingLines: Bool = false) -> String {
        guard value.unicodeScalars.contains(where: { needsEscape($0, keepingLines: keepingLines) }) else { return value }
        var out = String.UnicodeScalarView()
        for scalar in value.unicodeScalars {
            if needsEscape(scalar, keepingLines: keepingLines) {
                out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16))}".unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// Whether a terminal could act on `scalar` rather than show it.
    public static func needsEscape(_ scalar: Unicode.Scalar, keepingLines: Bool = false) -> Bool {
        if keepingLines && (scalar == "\n" || scalar == "\t") { return false }
        if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) { return true }
        guard scalar.value > 0x9F else { return false }
        switch scalar.properties.generalCategory {
        case .format, .lineSeparator, .paragraphSeparator, .control: return true
        default: return false
        }
    }

    /// JSON text with every character `needsEscape` would escape written as a
    /// JSON `\uXXXX` escape: the same JSON value, safe to print. (Encoders
    /// escape C0 already; C1 and bidi characters they pass through raw.)
    public static func escapeJSON(_ json: String) -> String {
        guard json.unicodeScalars.contains(where: { needsEscape($0, keepingLines: true) }) else { return json }
        var out = String.UnicodeScalarView()
        for scalar in json.unicodeScalars {
            if needsEscape(scalar, keepingLines: true) {
                // Outside strings JSON only has ASCII whitespace, so these are inside strings.
                let hex = String(scalar.value, radix: 16)
                let padded = String(repeating: "0", count: max(0, 4 - hex.count)) + hex
                out.append(contentsOf: "\\u\(padded)".unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }
}
