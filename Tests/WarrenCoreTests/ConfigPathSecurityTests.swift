import Testing
import WarrenCore
import WarrenTestSupport

/// Findings 3 and 9 of the security review: a path is checked after it is made
/// absolute (the config's directory, $HOME or the default it is joined to may
/// hold a newline, a space or `$`), and `$` is refused because ssh expands it.
@Suite struct ConfigPathSecurityTests {
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var configDirectory = "/etc/warren"
        var home = "/home/ops"
        var defaultStateDir = "/var/lib/warren"
        var file = "/etc/warren/warren.toml"
        var stateLine = "state_dir = \"/state\"\n"
        var identity = "/keys/id"
        /// The key path (or "" for the file) the error must name, and a word it must say.
        var path: String
        var says: String
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "relative state_dir under a directory with a newline",
             configDirectory: "/tmp/x\nProxyCommand touch /tmp/pwned", file: "/tmp/x\nProxyCommand touch /tmp/pwned/warren.toml",
             stateLine: "state_dir = \"state\"\n", path: "", says: "newline"),
        Case(name: "relative state_dir under a directory with a space",
             configDirectory: "/home/John Smith", file: "/home/John Smith/warren.toml",
             stateLine: "state_dir = \"state\"\n", path: "", says: "whitespace"),
        Case(name: "~ identity_file under a home with a newline",
             home: "/home/a\nProxyCommand x", identity: "~/id", path: "defaults.identity_file", says: "newline"),
        Case(name: "~ state_dir under a home with a space",
             home: "/home/John Smith", stateLine: "state_dir = \"~/state\"\n", path: "state_dir", says: "whitespace"),
        Case(name: "default state directory from $HOME with a newline",
             defaultStateDir: "/home/a\nProxyCommand x/.local/state/warren", stateLine: "", path: "state_dir", says: "newline"),
        Case(name: "default state directory with $",
             defaultStateDir: "/home/${USER}/.local/state/warren", stateLine: "", path: "state_dir", says: "'$'"),
        Case(name: "$ in identity_file", identity: "/keys/${HOME}/id", path: "defaults.identity_file", says: "'$'"),
        Case(name: "$ in state_dir", stateLine: "state_dir = \"/srv/$STATE\"\n", path: "state_dir", says: "'$'"),
        Case(name: "config file path with a newline",
             configDirectory: "/tmp/c\nProxyCommand x", file: "/tmp/c\nProxyCommand x/warren.toml", path: "", says: "config file's path"),
    ]

    @Test(arguments: cases)
    func pathIsRefusedAfterItIsMadeAbsolute(_ c: Case) throws {
        let identity = c.identity
        let loader = ConfigLoader(context: ConfigContext(
            configDirectory: c.configDirectory, homeDirectory: c.home, defaultStateDir: c.defaultStateDir,
            isReadableFile: { _ in true }))
        let text = c.stateLine + """
            [defaults]
            identity_file = "\(identity)"
            [tunnels.db]
            host = "127.0.0.1"
            host_key = "\(ConfigCases.hostKey)"
            local_forward = ["15432:127.0.0.1:5432"]
            """
        let error = try #require(throws: ConfigError.self) { try loader.load(text: text, file: c.file) }
        let issue = try #require(error.issues.first { $0.message.contains(c.says) }, "\(error)")
        if !c.path.isEmpty { #expect(issue.path == c.path, "\(error)") }
    }

    @Test func anAbsolutePathWithoutSpecialCharactersStillLoads() throws {
        let loader = ConfigLoader(context: ConfigContext(
            configDirectory: "/etc/warren", homeDirectory: "/home/ops", defaultStateDir: "/var/lib/warren",
            isReadableFile: { _ in true }))
        let config = try loader.load(text: """
            state_dir = "state"
            [tunnels.db]
            host = "127.0.0.1"
            identity_file = "~/id"
            host_key = "\(ConfigCases.hostKey)"
            local_forward = ["15432:127.0.0.1:5432"]
            """, file: "/etc/warren/warren.toml")
        #expect(config.stateDir == "/etc/warren/state")
        #expect(config.tunnels[0].endpoint.identityFile == "/home/ops/id")
    }
}
