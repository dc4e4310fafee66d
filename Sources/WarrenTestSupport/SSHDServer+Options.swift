extension SSHDServer {
    /// sshd's `LogLevel`. DEBUG1 is the default because it names the pid of
    /// each per-connection child (`debug1: Forked child N.`).
    public enum LogLevel: String, Sendable {
        case info = "INFO", verbose = "VERBOSE", debug1 = "DEBUG1", debug2 = "DEBUG2", debug3 = "DEBUG3"
    }

    /// Which server program runs.
    public enum Program: String, Sendable {
        /// OpenSSH's sshd: `sshdPath` is Debian's or a build of its own.
        case openSSH
        /// Dropbear (`dropbear -F -E -s`); `sshdPath` is the dropbear binary.
        /// It has no config file: `extraConfig`, `maxStartups`, `logLevel`
        /// and `strictModes` do not apply (it always checks modes).
        case dropbear

        /// What to install when the binary is missing.
        var installHint: String {
            switch self {
            case .openSSH: "openssh-server is not installed: apt-get install -y openssh-server"
            case .dropbear: "Dropbear is not installed: apt-get install -y dropbear-bin"
            }
        }

        /// authorized_keys, relative to the server's directory: sshd is told
        /// where it is; Dropbear reads the login user's `~/.ssh/authorized_keys`
        /// and gets the server's directory as that home.
        var authorizedKeysName: String {
            switch self {
            case .openSSH: "authorized_keys"
            case .dropbear: ".ssh/authorized_keys"
            }
        }
    }

    /// How to set up a test sshd.
    public struct Options: Sendable {
        /// OpenSSH's sshd (the default) or Dropbear.
        public var program: Program
        /// Whether the config says `UsePAM no`; an sshd built `--without-pam`
        /// (the compat build) does not know the keyword.
        public var writesUsePAM: Bool
        /// authorized_keys options put in front of the client key, e.g.
        /// `restrict,port-forwarding,permitopen="127.0.0.1:5432"`.
        public var authorizedKeyOptions: String?
        /// `StrictModes`. With `yes`, sshd refuses an authorized_keys file in a
        /// group- or world-writable directory chain — such as anything under
        /// /tmp. Use `Options.strict()` for a chain it accepts.
        public var strictModes: Bool
        /// `MaxStartups` (e.g. `"3:100:3"`), or sshd's default when nil.
        public var maxStartups: String?
        public var logLevel: LogLevel
        /// Config lines placed *before* the defaults. sshd keeps the first value
        /// it reads for a keyword, so these override the defaults.
        public var extraConfig: [String]
        /// Config lines placed at the end, where `Match` blocks must go.
        public var trailingConfig: [String]
        /// Where the server's own temporary directory is made.
        public var parentDirectory: String
        /// A fixed port; a free one when nil.
        public var port: Int?
        /// How long to wait for `Server listening on ...` after each start.
        public var readyTimeout: Duration
        /// The server binary; absolute, because sshd re-execs itself.
        public var sshdPath: String

        public init(
            program: Program = .openSSH,
            writesUsePAM: Bool = true,
            authorizedKeyOptions: String? = nil,
            strictModes: Bool = false,
            maxStartups: String? = nil,
            logLevel: LogLevel = .debug1,
            extraConfig: [String] = [],
            trailingConfig: [String] = [],
            parentDirectory: String = "/tmp",
            port: Int? = nil,
            readyTimeout: Duration = .seconds(10),
            sshdPath: String = "/usr/sbin/sshd"
        ) {
            self.program = program
            self.writesUsePAM = writesUsePAM
            self.authorizedKeyOptions = authorizedKeyOptions
            self.strictModes = strictModes
            self.maxStartups = maxStartups
            self.logLevel = logLevel
            self.extraConfig = extraConfig
            self.trailingConfig = trailingConfig
            self.parentDirectory = parentDirectory
            self.port = port
            self.readyTimeout = readyTimeout
            self.sshdPath = sshdPath
        }

        /// `StrictModes yes`, with the server's files under
        /// `SSHDServer.secureParentDirectory` (/run is root-owned 0755, unlike
        /// /tmp), so a correct authorized_keys is accepted and a test can then
        /// break a mode on purpose.
        public static func strict(
            authorizedKeyOptions: String? = nil,
            logLevel: LogLevel = .debug1,
            extraConfig: [String] = []
        ) -> Options {
            Options(
                authorizedKeyOptions: authorizedKeyOptions,
                strictModes: true,
                logLevel: logLevel,
                extraConfig: extraConfig,
                parentDirectory: SSHDServer.secureParentDirectory
            )
        }

        /// The sshd_config text for a server on `port` whose files are in `directory`.
        func render(port: Int, directory: String) -> String {
            var lines = extraConfig
            lines += [
                "ListenAddress 127.0.0.1:\(port)",
                "HostKey \(directory)/\(SSHDServer.hostKeyName)",
                "PidFile none",
            ]
            if writesUsePAM { lines.append("UsePAM no") }
            lines += [
                "StrictModes \(strictModes ? "yes" : "no")",
                "PermitRootLogin prohibit-password",
                "AuthorizedKeysFile \(directory)/authorized_keys",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "AllowTcpForwarding yes",
                "GatewayPorts no",
                "PrintMotd no",
                "LogLevel \(logLevel.rawValue)",
            ]
            if let maxStartups { lines.append("MaxStartups \(maxStartups)") }
            lines += trailingConfig
            return lines.joined(separator: "\n") + "\n"
        }
    }
}
