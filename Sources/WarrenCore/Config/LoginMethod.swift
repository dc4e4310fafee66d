/// The ways to log in besides a plain key file, each optional and combinable:
/// `identity_agent`, `certificate_file`, `password_file`, `passphrase_file`.
/// Secrets never reach a command line or the environment: ssh reads them
/// through an askpass helper that prints the file (see `AskpassScript`).
public struct LoginMethod: Sendable, Hashable {
    /// `identity_agent`: an ssh-agent socket path, or `SSH_AUTH_SOCK` for the
    /// agent of warren's own environment. Keys held by an agent or a hardware token.
    public var identityAgent: String?
    /// `certificate_file`: an OpenSSH user certificate (`ssh-keygen -s`) for the key.
    public var certificateFile: String?
    /// `certificate_command`: an argv (no shell) that prints a fresh user
    /// certificate for the key on stdout; `{public_key}` in it stands for the
    /// key's `.pub` path. With it, `certificateFile` is where warren writes the
    /// certificate (`KEY-cert.pub` unless `certificate_file` says otherwise).
    public var certificateCommand: [String]?
    /// `password_file`: a 0600 file holding the login password.
    public var passwordFile: String?
    /// `passphrase_file`: a 0600 file holding the identity file's passphrase.
    public var passphraseFile: String?

    /// The value of `identity_agent` that means "the environment's agent".
    public static let environmentAgent = "SSH_AUTH_SOCK"

    public init(
        identityAgent: String? = nil, certificateFile: String? = nil, certificateCommand: [String]? = nil,
        passwordFile: String? = nil, passphraseFile: String? = nil
    ) {
        self.identityAgent = identityAgent
        self.certificateFile = certificateFile
        self.certificateCommand = certificateCommand
        self.passwordFile = passwordFile
        self.passphraseFile = passphraseFile
    }

    /// Whether ssh must be able to ask for a secret (askpass, BatchMode off).
    public var needsAskpass: Bool { passwordFile != nil || passphraseFile != nil }

    /// Whether ssh uses the agent of warren's environment.
    public var usesEnvironmentAgent: Bool { identityAgent == Self.environmentAgent }

    /// The placeholder in `certificate_command` that stands for the public key's path.
    public static let publicKeyPlaceholder = "{public_key}"

    /// The argv to run for a certificate: `{public_key}` replaced by `publicKey`.
    public static func certificateArgv(_ command: [String], publicKey: String) -> [String] {
        command.map { item in
            var out = ""
            var rest = Substring(item)
            while let range = rest.firstRange(of: publicKeyPlaceholder) {
                out += rest[..<range.lowerBound] + publicKey
                rest = rest[range.upperBound...]
            }
            return out + rest
        }
    }

    /// Why a `certificate_command` cannot be run as given; nil when it can.
    public static func certificateCommandReason(_ command: [String]) -> String? {
        guard let program = command.first, !program.isEmpty else {
            return "must name a program first: an argv list such as [\"vault\", \"write\", \"-field=signed_key\", \"ssh/sign/ROLE\", \"public_key=@{public_key}\"]"
        }
        if program.hasPrefix("-") { return "the program \"\(TerminalText.escape(program))\" starts with \"-\"" }
        for item in command {
            if item.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
                return "\"\(TerminalText.escape(item))\" holds a control character"
            }
            // Only {public_key} is replaced: anything else in braces is a typo (or a shell habit).
            var rest = Substring(item)
            while let open = rest.firstIndex(of: "{") {
                let tail = rest[open...]
                if tail.hasPrefix(publicKeyPlaceholder) {
                    rest = tail.dropFirst(publicKeyPlaceholder.count)
                    continue
                }
                let word = tail.prefix { $0 != "}" && $0 != " " }.dropFirst()
                if tail.dropFirst(word.count + 1).first == "}", !word.isEmpty, word.allSatisfy({ $0.isLetter || $0 == "_" }) {
                    return "\"\(TerminalText.escape(item))\" has the placeholder {\(word)}; the only one is {public_key}"
                }
                rest = tail.dropFirst()
            }
        }
        if command.count == 1, program.contains(" ") {
            return "\"\(TerminalText.escape(program))\" is one string with spaces: give the program and each argument as its own list item (no shell runs it)"
        }
        return nil
    }

    /// The secret files, with their config keys, for mode checks.
    public var secretFiles: [(key: String, path: String)] {
        [("password_file", passwordFile), ("passphrase_file", passphraseFile)].compactMap { key, path in path.map { (key, $0) } }
    }
}
