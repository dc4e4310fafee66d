import Testing
import WarrenCore
import WarrenTestSupport

/// A loader whose only existing files are the test key paths.
func makeLoader(stateDirOverride: String? = nil, existing: Set<String> = ["/keys/id"]) -> ConfigLoader {
    ConfigLoader(
        context: ConfigContext(
            configDirectory: "/etc/warren", homeDirectory: "/home/ops",
            stateDirOverride: stateDirOverride, defaultStateDir: "/var/lib/warren",
            isReadableFile: { existing.contains($0) }))
}

func substitute(_ text: String) -> String {
    text.replacingOccurrences(of: "@KEY@", with: "/keys/id").replacingOccurrences(of: "@STATE@", with: "/state")
}

@Suite struct ConfigLoaderTests {
    @Test func validConfigLoadsEveryShape() throws {
        let config = try makeLoader().load(text: substitute(ConfigCases.valid), file: "warren.toml")
        #expect(config.stateDir == "/state")
        #expect(config.tunnels.map(\.name) == ["jumped", "local", "remote", "sockets", "socks"])

        let local = try #require(config.tunnel(named: "local"))
        #expect(local.endpoint.user == "tunnel")
        #expect(local.endpoint.port == 22)
        #expect(local.keepaliveInterval == 5 && local.keepaliveCount == 2 && local.connectTimeout == 4)
        #expect(local.localForwards == [
            Forward(kind: .local, listen: .tcp(host: "127.0.0.1", port: 15432), target: .tcp(host: "db.internal", port: 5432)),
            Forward(kind: .local, listen: .tcp(host: "::1", port: 15433), target: .tcp(host: "db.internal", port: 5432)),
        ])

        let remote = try #require(config.tunnel(named: "remote"))
        #expect(remote.endpoint.port == 2222)
        #expect(remote.remoteForwards.map(\.description) == ["127.0.0.1:8080:localhost:80", "9090"])

        let socks = try #require(config.tunnel(named: "socks"))
        #expect(socks.endpoint.hostKeyPolicy == .acceptNew)
        #expect(socks.endpoint.hostKeys.isEmpty)

        let sockets = try #require(config.tunnel(named: "sockets"))
        #expect(sockets.localForwards[0].listen == .unix(path: "/tmp/warren-test.sock"))
        #expect(sockets.localForwards[1].target == .unix(path: "/run/postgresql/.s.PGSQL.5432"))

        let jumped = try #require(config.tunnel(named: "jumped"))
        #expect(jumped.enabled == false)
        #expect(jumped.jumps.map(\.host) == ["jump1.example.com", "jump2.example.com"])
        #expect(jumped.jumps[1].port == 2200 && jumped.jumps[1].user == "hop")
        #expect(jumped.jumps[0].user == "tunnel", "a hop inherits the tunnel's user")
        #expect(jumped.jumps[0].identityFile == "/keys/id")
    }

    @Test(arguments: ConfigCases.bad)
    func badConfigNamesTheKey(_ bad: ConfigCases.Bad) {
        do {
            _ = try makeLoader().load(text: substitute(bad.text), file: "warren.toml")
            Issue.record("\(bad.name): loaded, but should have been refused")
        } catch {
            let first = error.issues.first
            let named = first.map { $0.line != nil ? "\($0.line!):\($0.column!)" : $0.path }
            #expect(named == bad.path, "\(bad.name): \(error.description)")
            #expect(error.description.hasPrefix("warren.toml"), "every line names the file")
            #expect(!(first?.message.isEmpty ?? true))
        }
    }

    @Test func allIssuesAreReportedAtOnce() {
        let text = """
            [tunnels.a]
            host = "-x"
            port = 0
            identity_file = "/keys/id"
            host_key = "\(ConfigCases.hostKey)"
            local_forward = "bad"
            """
        #expect(throws: ConfigError.self) { try makeLoader().load(text: text, file: "f") }
        do {
            _ = try makeLoader().load(text: text, file: "f")
        } catch {
            #expect(Set(error.issues.map(\.path)) == ["tunnels.a.host", "tunnels.a.port", "tunnels.a.local_forward"])
        }
    }

    @Test func unknownKeySuggestsTheClosest() {
        let text = substitute("[tunnels.a]\nidentity_file = \"@KEY@\"\nhost = \"b\"\nhost_key = \"\(ConfigCases.hostKey)\"\nlocal_forward = \"1:a:2\"\nkeepalive_intervall = 3")
        do {
            _ = try makeLoader().load(text: text, file: "f")
            Issue.record("loaded")
        } catch {
            #expect(error.issues.first?.message.contains("did you mean \"keepalive_interval\"?") == true, "\(error)")
        }
    }

    @Test func stateDirOverrideWinsAndDefaultIdentityIsUsed() throws {
        let text = "state_dir = \"/from-file\"\n[tunnels.a]\nhost = \"b\"\nhost_key = \"\(ConfigCases.hostKey)\"\nlocal_forward = \"1:a:2\""
        let config = try makeLoader(stateDirOverride: "/cli", existing: ["/cli/keys/id_ed25519"]).load(text: text, file: "f")
        #expect(config.stateDir == "/cli")
        #expect(config.tunnels[0].endpoint.identityFile == "/cli/keys/id_ed25519")
    }

    @Test func missingDefaultKeySuggestsKeygen() {
        let text = "[tunnels.a]\nhost = \"b\"\nhost_key = \"\(ConfigCases.hostKey)\"\nlocal_forward = \"1:a:2\""
        do {
            _ = try makeLoader(existing: []).load(text: text, file: "f")
            Issue.record("loaded")
        } catch {
            #expect(error.issues.map(\.path) == ["tunnels.a.identity_file"])
            #expect(error.issues[0].message.contains("warren keygen"))
        }
    }

    @Test func relativeAndHomePathsAreResolved() throws {
        let text = "[tunnels.a]\nhost = \"b\"\nidentity_file = \"~/k\"\nhost_key = \"\(ConfigCases.hostKey)\"\nlocal_forward = \"1:a:2\"\n[tunnels.b]\nhost = \"b\"\nidentity_file = \"keys/k\"\nhost_key = \"\(ConfigCases.hostKey)\"\nlocal_forward = \"2:a:2\""
        let config = try makeLoader(existing: ["/home/ops/k", "/etc/warren/keys/k"]).load(text: text, file: "f")
        #expect(config.tunnels.map(\.endpoint.identityFile) == ["/home/ops/k", "/etc/warren/keys/k"])
    }
}

/// Loading a thousand tunnels is linear: each tunnel's defining line is found
/// in one pass over the text (a search per tunnel took 12 s at a thousand).
@Suite struct ConfigLoaderScaleTests {
    @Test func aThousandTunnelsLoadInWellUnderASecond() throws {
        var text = "state_dir = \"/var/lib/warren\"\n[defaults]\nuser = \"u\"\nidentity_file = \"/keys/id\"\nhost_key_policy = \"accept-new\"\n"
        for i in 0..<1000 {
            text += "[tunnels.s\(i)]\nhost = \"10.0.\(i / 250).\(i % 250)\"\nlocal_forward = [\"127.0.0.1:\(30000 + i):db:5432\"]\n"
        }
        let started = ContinuousClock.now
        let config = try makeLoader().load(text: text, file: "/etc/warren/warren.toml")
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        #expect(config.tunnels.count == 1000)
        // Generous: the quadratic search took 12 s; linear takes tens of ms.
        #expect(seconds < 3, "\(seconds) s")
    }

    @Test func theLineOfEveryDefinitionIsKnownForMessages() {
        let text = "a = 1\n[tunnels.db]\nhost = \"x\"\n[[tunnels.db.jump]]\n[tunnels.\"my.db\"]\n[tunnels.other.jump]\n"
        let lines = ConfigLoader.definitionLines(in: text)
        #expect(lines["db"] == 2)
        #expect(lines["my.db"] == 5)
        #expect(lines["other"] == 6)
    }
}
