/// A public key line as ssh-keygen writes it to `*.pub`: `TYPE BASE64 [COMMENT]`.
public struct PublicKey: Sendable, Equatable, CustomStringConvertible {
    public var key: HostKey
    /// The comment, only when it is safe to print into an authorized_keys line
    /// and a shell command (ssh-keygen's default is `user@host`).
    public var comment: String?

    public init(key: HostKey, comment: String?) {
        self.key = key
        self.comment = comment
    }

    /// Parses a `.pub` line. A comment with characters outside
    /// `[A-Za-z0-9@._+:=-]` is dropped rather than escaped.
    public static func parse(_ line: String) -> Result<PublicKey, HostKeyParseError> {
        let trimmed = line.split(separator: "\n").first.map(String.init) ?? ""
        let fields = trimmed.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true).map(String.init)
        guard fields.count >= 2, HostKey.knownTypes.contains(fields[0]) else {
            return .failure(.init(reason: "is not a public key line (TYPE BASE64 COMMENT)"))
        }
        switch HostKey.parse(fields[0] + " " + fields[1]) {
        case .failure(let error): return .failure(error)
        case .success(let key):
            let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@._+:=-".unicodeScalars)
            let comment = fields.count > 2 ? fields[2].trimmingSpaces : nil
            let usable = comment.flatMap { $0.isEmpty || !$0.unicodeScalars.allSatisfy(safe.contains) ? nil : $0 }
            return .success(PublicKey(key: key, comment: usable))
        }
    }

    public var description: String { comment.map { "\(key) \($0)" } ?? key.description }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" || c == "\r" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\r" { s.removeLast() }
        return String(s)
    }
}
