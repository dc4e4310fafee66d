import Testing
@testable import WarrenCore
import WarrenTestSupport

/// `include` globs and `[defaults]` holding the shared bastion.
@Suite struct ConfigIncludeTests {
    /// A loader whose `include` patterns match the given files (pattern -> files).
    func loader(_ files: [String: [IncludedFile]]) -> ConfigLoader {
        var context = ConfigContext(
            configDirectory: "/etc/warren", homeDirectory: "/home/ops", defaultStateDir: "/var/lib/warren",
            isReadableFile: { $0 == "/keys/id" })
        context.expandInclude = { files[$0] ?? [] }
        return ConfigLoader(context: context)
    }

    let main = """
        include = ["tunnels.d/*.toml"]
        [defaults]
        identity_file = "/keys/id"
        host = "bastion.example.com"
        port = 2222
        user = "tunnel"
        host_key = "\(ConfigCases.hostKey)"
        """

    func customer(_ name: String, port: Int, extra: String = "") -> String {
        """
        # provisioned for \(name)
        [tunnels.\(name)]
        local_forward = ["127.0.0.1:\(port):db.\(name).internal:5432"]
        \(extra)
        """
    }

    @Test func includedTunnelsInheritTheSharedBastion() throws {
        let files = [
            IncludedFile(path: "/etc/warren/tunnels.d/acme.toml", text: customer("acme", port: 15001)),
            IncludedFile(path: "/etc/warren/tunnels.d/zenith.toml", text: customer("zenith", port: 15002)),
        ]
        let config = try loader(["/etc/warren/tunnels.d/*.toml": files]).load(text: main, file: "/etc/warren/warren.toml")
        #expect(config.tunnels.map(\.name) == ["acme", "zenith"])
        let acme = try #require(config.tunnel(named: "acme"))
        #expect(acme.endpoint.host == "bastion.example.com")
        #expect(acme.endpoint.port == 2222)
        #expect(acme.endpoint.user == "tunnel")
        #expect(acme.endpoint.hostKeys.map(\.description) == [ConfigCases.hostKey])
    }

    @Test func aTunnelWithItsOwnHostDoesNotTakeTheSharedPin() throws {
        let files = [IncludedFile(path: "/etc/warren/tunnels.d/own.toml", text: customer("own", port: 15003, extra: "host = \"other.example.com\""))]
        let error = #expect(throws: ConfigError.self) {
            try loader(["/etc/warren/tunnels.d/*.toml": files]).load(text: main, file: "/etc/warren/warren.toml")
        }
        #expect(error?.description == "/etc/warren/tunnels.d/own.toml: tunnels.own.host_key: is required with host_key_policy \"pinned\" (the default); run `warren hostkey TUNNEL` to print it, or set host_key_policy = \"accept-new\"")
    }

    @Test func aTunnelDefinedTwiceNamesBothFilesAndLines() {
        let files = [
            IncludedFile(path: "/etc/warren/tunnels.d/a.toml", text: customer("acme", port: 15001)),
            IncludedFile(path: "/etc/warren/tunnels.d/b.toml", text: "\n\n" + customer("acme", port: 15002)),
        ]
        let error = #expect(throws: ConfigError.self) {
            try loader(["/etc/warren/tunnels.d/*.toml": files]).load(text: main, file: "/etc/warren/warren.toml")
        }
        #expect(error?.description == "/etc/warren/tunnels.d/b.toml: tunnels.acme: is defined twice: at /etc/warren/tunnels.d/a.toml:2 and at /etc/warren/tunnels.d/b.toml:4; each tunnel is defined once")
    }

    @Test func everyIssueNamesItsFile() {
        let files = [
            IncludedFile(path: "/etc/warren/tunnels.d/bad.toml", text: customer("bad", port: 15001, extra: "prot = 22")),
            IncludedFile(path: "/etc/warren/tunnels.d/broken.toml", text: "[tunnels.x\n"),
            IncludedFile(path: "/etc/warren/tunnels.d/extra.toml", text: "state_dir = \"/x\"\n" + customer("extra", port: 15001)),
        ]
        let error = #expect(throws: ConfigError.self) {
            try loader(["/etc/warren/tunnels.d/*.toml": files]).load(text: main + "\n[tunnels.main]\nlocal_forward = [\"127.0.0.1:15009:db:5432\"]\nhots = \"x\"\n", file: "/etc/warren/warren.toml")
        }
        let lines = (error?.description ?? "").split(separator: "\n").map(String.init)
        #expect(lines.contains("/etc/warren/tunnels.d/bad.toml: tunnels.bad.prot: unknown key \"prot\" in a tunnel; did you mean \"port\"?"))
        #expect(lines.contains { $0.hasPrefix("/etc/warren/tunnels.d/broken.toml:1:") })
        #expect(lines.contains("/etc/warren/tunnels.d/extra.toml: state_dir: unknown key \"state_dir\" in an included file (settings belong in the main file); allowed: tunnels"))
        #expect(lines.contains { $0.hasPrefix("/etc/warren/tunnels.d/extra.toml: tunnels.extra.local_forward[0]: listens on 127.0.0.1:15001, which tunnels.bad") } == false,
                "bad.toml's tunnel was invalid, so it takes no port")
        #expect(lines.contains("/etc/warren/warren.toml: tunnels.main.hots: unknown key \"hots\" in a tunnel; did you mean \"host\"?"))
    }

    @Test func aListenerClashAcrossFilesNamesBoth() {
        let files = [
            IncludedFile(path: "/etc/warren/tunnels.d/a.toml", text: customer("a", port: 15001)),
            IncludedFile(path: "/etc/warren/tunnels.d/b.toml", text: customer("b", port: 15001)),
        ]
        let error = #expect(throws: ConfigError.self) {
            try loader(["/etc/warren/tunnels.d/*.toml": files]).load(text: main, file: "/etc/warren/warren.toml")
        }
        #expect(error?.description == "/etc/warren/tunnels.d/b.toml: tunnels.b.local_forward[0]: listens on 127.0.0.1:15001, which tunnels.a.local_forward[0] (in /etc/warren/tunnels.d/a.toml) also uses; each local listener needs its own port")
    }

    @Test func aMissingLiteralIncludeIsAnErrorAnEmptyGlobIsNot() throws {
        let text = main + "\n[tunnels.main]\nlocal_forward = [\"127.0.0.1:15009:db:5432\"]\n"
        _ = try loader([:]).load(text: text, file: "/etc/warren/warren.toml")
        let error = #expect(throws: ConfigError.self) {
            try loader([:]).load(text: text.replacingOccurrences(of: "tunnels.d/*.toml", with: "extra.toml"), file: "/etc/warren/warren.toml")
        }
        #expect(error?.description == "/etc/warren/warren.toml: include[0]: /etc/warren/extra.toml does not exist; include takes files or glob patterns relative to the main file")
    }

    @Test(arguments: [("prot", "port"), ("hots", "host"), ("uesr", "user"), ("identity-file", "identity_file")])
    func didYouMeanCatchesTranspositions(typed: String, meant: String) {
        let allowed = ["host", "port", "user", "identity_file", "host_key"]
        #expect(DidYouMean.suggestion(for: typed, among: allowed) == meant)
    }
}
