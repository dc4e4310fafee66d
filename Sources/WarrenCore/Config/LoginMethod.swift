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
    /// `password_file`: a 0600 file holding the login password.
    public var passwordFile: String?
    /// `passphrase_file`: a 0600 file holding the identity file's passphrase.
    public var passphraseFile: String?

    /// The value of `identity_agent` that means "the environment's agent".
    public static let environmentAgent = "SSH_AUTH_SOCK"

    public init(identityAgent: String? = nil, certificateFile: String? = nil, passwordFile: String? = nil, passphraseFile: String? = nil) {
        self.identityAgent = identityAgent
        self.certificateFile = certificateFile
        self.passwordFile = passwordFile
        self.passphraseFile = passphraseFile
    }

    /// Whether ssh must be able to ask for a secret (askpass, BatchMode off).
    public var needsAskpass: Bool { passwordFile != nil || passphraseFile != nil }

    /// Whether ssh uses the agent of warren's environment.
    public var usesEnvironmentAgent: Bool { identityAgent == Self.environmentAgent }

    /// The secret files, with their config keys, for mode checks.
    public var secretFiles: [(key: String, path: String)] {
        [("password_file", passwordFile), ("passphrase_file", passphraseFile)].compactMap { key, path in path.map { (key, $0) } }
    }
}
