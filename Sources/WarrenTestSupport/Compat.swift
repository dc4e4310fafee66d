import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The bastion matrix of `make test-compat`: which SSH servers and clients
/// exist in the field and how a test gets each of them. Nothing here skips:
/// a server or client that is not there is a `FixtureError` that says how to
/// get it.
public enum Compat {
    /// The environment variable that turns the compat suites on (`make test-compat` sets it).
    public static let enableVariable = "WARREN_COMPAT"
    /// The directory OpenSSH 10.5p1 is installed in, set by `make test-compat`
    /// from `scripts/compat-build.sh`'s last line.
    public static let buildVariable = "WARREN_COMPAT_OPENSSH"

    /// Whether this run is a compat run.
    public static var isEnabled: Bool { ProcessInfo.processInfo.environment[enableVariable] == "1" }

    /// The OpenSSH 10.5p1 install directory (`bin/ssh`, `sbin/sshd`, ...).
    public static func openSSH105() throws -> String {
        guard let dir = ProcessInfo.processInfo.environment[buildVariable], !dir.isEmpty else {
            throw FixtureError("\(buildVariable) is not set: run `make test-compat` (scripts/compat-build.sh builds OpenSSH 10.5p1 and prints its directory)")
        }
        for part in ["bin/ssh", "sbin/sshd", "libexec/sshd-session", "libexec/sshd-auth"] where access("\(dir)/\(part)", X_OK) != 0 {
            throw FixtureError("\(dir)/\(part) is missing: \(buildVariable) must name a complete OpenSSH 10.5p1 install (scripts/compat-build.sh)")
        }
        return dir
    }

    /// A bastion's server program.
    public enum Server: String, CaseIterable, Sendable, CustomStringConvertible {
        /// Debian 12's sshd.
        case openSSH92 = "sshd 9.2"
        /// The OpenSSH 10.5p1 build with its default settings: PerSourcePenalties on.
        case openSSH105 = "sshd 10.5"
        /// Dropbear 2022.83 (Debian's dropbear-bin), as on appliances.
        case dropbear = "dropbear"

        public var description: String { rawValue }

        /// Whether it penalises source addresses (sshd 9.8 and later, by default):
        /// a test must then not spend more than the 15 s that block the address.
        public var penalises: Bool { self == .openSSH105 }

        /// Options for an `SSHDServer` of this kind, `base` otherwise.
        public func options(_ base: SSHDServer.Options = SSHDServer.Options()) throws -> SSHDServer.Options {
            var options = base
            switch self {
            case .openSSH92:
                options.sshdPath = "/usr/sbin/sshd"
            case .openSSH105:
                // Only what a test needs (addresses, keys, files) is set, as
                // for 9.2; nothing about penalties, MaxStartups or timeouts.
                options.sshdPath = try Compat.openSSH105() + "/sbin/sshd"
                options.writesUsePAM = false
            case .dropbear:
                options.program = .dropbear
                options.sshdPath = "/usr/sbin/dropbear"
            }
            return options
        }
    }

    /// The ssh client warren runs (`ssh_binary`).
    public enum Client: String, CaseIterable, Sendable, CustomStringConvertible {
        /// Debian 12's /usr/bin/ssh.
        case openSSH92 = "ssh 9.2"
        /// The OpenSSH 10.5p1 build's ssh (its ssh-keygen and ssh-keyscan beside it).
        case openSSH105 = "ssh 10.5"

        public var description: String { rawValue }

        /// The absolute path of the client.
        public func path() throws -> String {
            switch self {
            case .openSSH92:
                guard access("/usr/bin/ssh", X_OK) == 0 else { throw FixtureError("openssh-client is not installed: apt-get install -y openssh-client") }
                return "/usr/bin/ssh"
            case .openSSH105:
                return try Compat.openSSH105() + "/bin/ssh"
            }
        }

        /// What `ssh -V` starts with.
        public var versionPrefix: String {
            switch self {
            case .openSSH92: "OpenSSH_9.2p1"
            case .openSSH105: "OpenSSH_10.5p1"
            }
        }
    }

    /// One server with one client.
    public struct Pairing: Sendable, CustomStringConvertible {
        public let server: Server
        public let client: Client
        public init(_ server: Server, _ client: Client) {
            self.server = server
            self.client = client
        }
        public var description: String { "\(client) -> \(server)" }
    }

    /// Every pairing: each server with each client.
    public static let pairings: [Pairing] = Server.allCases.flatMap { server in Client.allCases.map { Pairing(server, $0) } }
}

extension Lab {
    /// `Lab.bastion(...)` (tunnel `db` through one server to an echo target)
    /// with the pairing's server as the bastion and its client as `ssh_binary`.
    public static func compat(_ pairing: Compat.Pairing, _ base: SSHDServer.Options = SSHDServer.Options(), extra: String = "") throws -> Lab {
        try bastion(pairing.server.options(base), extra: extra, sshBinary: pairing.client.path())
    }
}
