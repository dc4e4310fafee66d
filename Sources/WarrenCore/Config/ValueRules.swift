/// The rules every user-supplied string must pass before it reaches a
/// generated file or an argument. Each returns the reason for a refusal, or nil.
///
/// ssh_config splits on whitespace, treats quotes and `#` specially, expands
/// `%` tokens in many keywords, and a value starting with `-` could become an
/// option wherever a string reaches argv; so none of these are let through.
public enum ValueRules {
    /// Characters no value may contain anywhere.
    static func forbiddenCharacterReason(_ value: String) -> String? {
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\n": return "contains a newline"
            case "\r": return "contains a carriage return"
            case "\0": return "contains a NUL character"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                return "contains a control character (U+\(String(scalar.value, radix: 16, uppercase: true)))"
            case " ", "\t": return "contains whitespace, which ssh_config cannot carry"
            case "\"", "'", "`": return "contains a quote, which ssh_config cannot carry"
            case "%": return "contains '%', which ssh would expand as a token"
            case "$": return "contains '$', which ssh would expand as ${VARIABLE} (it would then read another file than warren wrote)"
            case "#": return "contains '#', which ssh_config reads as a comment"
            case "\\": return "contains a backslash"
            case _ where scalar.value > 0x7E: return "contains a non-ASCII character"
            default: continue
            }
        }
        return nil
    }

    /// A tunnel name: it becomes a directory name and part of the Host alias.
    public static func tunnelNameReason(_ name: String) -> String? {
        if name.isEmpty { return "a tunnel name cannot be empty" }
        if name.count > 64 { return "a tunnel name is at most 64 characters" }
        let first = name.unicodeScalars.first!
        let allowedFirst = isAlnum(first)
        let allowedRest = name.unicodeScalars.allSatisfy { isAlnum($0) || $0 == "." || $0 == "_" || $0 == "-" }
        if !allowedFirst || !allowedRest {
            return "tunnel name \"\(TerminalText.escape(name))\" is not allowed; use letters, digits, '.', '_' and '-', starting with a letter or digit"
        }
        return nil
    }

    /// A host name, IPv4 address or IPv6 literal (without brackets).
    public static func hostReason(_ host: String) -> String? {
        if host.isEmpty { return "is empty" }
        if host.hasPrefix("-") { return "starts with '-'" }
        if let reason = forbiddenCharacterReason(host) { return reason }
        if host.count > 253 { return "is longer than 253 characters" }
        if host.contains(":") {
            let ok = host.unicodeScalars.allSatisfy { isHex($0) || $0 == ":" || $0 == "." }
            return ok ? nil : "is not a valid IPv6 address"
        }
        if host.hasPrefix(".") || host.hasSuffix("..") { return "is not a valid host name" }
        let ok = host.unicodeScalars.allSatisfy { isAlnum($0) || $0 == "." || $0 == "-" || $0 == "_" }
        return ok ? nil : "is not a valid host name (letters, digits, '.', '-', '_') or IP address"
    }

    /// A login name on the bastion.
    public static func userReason(_ user: String) -> String? {
        if user.isEmpty { return "is empty" }
        if user.hasPrefix("-") { return "starts with '-'" }
        if let reason = forbiddenCharacterReason(user) { return reason }
        if user.count > 64 { return "is longer than 64 characters" }
        let ok = user.unicodeScalars.allSatisfy { isAlnum($0) || $0 == "." || $0 == "-" || $0 == "_" }
        return ok ? nil : "is not a valid user name (letters, digits, '.', '-', '_')"
    }

    /// A file system path that will be written into an ssh_config.
    public static func pathReason(_ path: String) -> String? {
        if path.isEmpty { return "is empty" }
        if path.hasPrefix("-") { return "starts with '-'" }
        if let reason = forbiddenCharacterReason(path) { return reason }
        if path.contains(",") { return "contains ',', which ssh_config cannot carry here" }
        return nil
    }

    public static func portReason(_ port: Int) -> String? {
        (1...65535).contains(port) ? nil : "\(port) is out of range; allowed: 1-65535"
    }

    private static func isAlnum(_ s: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(s) || ("A"..."Z").contains(s) || ("0"..."9").contains(s)
    }

    private static func isHex(_ s: Unicode.Scalar) -> Bool {
        ("a"..."f").contains(s) || ("A"..."F").contains(s) || ("0"..."9").contains(s)
    }

}
