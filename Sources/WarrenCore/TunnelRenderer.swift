import Mustache

/// The generated files of one tunnel.
public struct RenderedTunnel: Sendable, Equatable {
    public var sshConfig: String
    public var knownHosts: String
    /// The askpass helper, for tunnels that log in with a password or a key
    /// passphrase (`AskpassScript`); nil otherwise.
    public var askpass: String? = nil
}

/// Renders a tunnel's ssh_config and known_hosts from the mustache templates.
/// Pure: the template texts and any existing known_hosts come in as strings.
public struct TunnelRenderer: Sendable {
    public static let sshConfigTemplate = "ssh_config.mustache"
    public static let knownHostsTemplate = "known_hosts.mustache"
    public static let templateNames = [sshConfigTemplate, knownHostsTemplate]

    let sshConfig: MustacheTemplate
    let knownHosts: MustacheTemplate

    /// Fails with the template's name and the parser's reason.
    public init(sshConfigTemplate: String, knownHostsTemplate: String) throws(TemplateError) {
        func compile(_ text: String, _ name: String) throws(TemplateError) -> MustacheTemplate {
            do { return try MustacheTemplate(string: text) } catch {
                throw TemplateError(template: name, reason: "\(error)")
            }
        }
        self.sshConfig = try compile(sshConfigTemplate, Self.sshConfigTemplate)
        self.knownHosts = try compile(knownHostsTemplate, Self.knownHostsTemplate)
    }

    /// - Parameters:
    ///   - directory: the tunnel's directory, `<state_dir>/tunnels/<name>`.
    ///   - existingKnownHosts: the current known_hosts, whose keys learned on first use
    ///     (`accept-new`) are kept, so the pin survives re-rendering and restarts.
    ///   - sshProgram: the ssh that jump hops run.
    ///   - control: the control socket of a shared connection, if any.
    ///   - warrenProgram: the warren binary the askpass helper runs to print a secret.
    public func render(
        _ tunnel: TunnelConfig, configFile: String, directory: String, existingKnownHosts: String? = nil,
        sshProgram: String = "/usr/bin/ssh", control: ControlRole = .none, warrenProgram: String = "/usr/bin/warren"
    ) -> RenderedTunnel {
        let knownHostsFile = "\(directory)/known_hosts"
        let sshConfigPath = "\(directory)/ssh_config"
        var hosts: [[String: Any]] = []
        var entries: [[String: Any]] = []
        var learnedAliases: Set<String> = []
        let endpoints = tunnel.jumps.enumerated().map { (tunnel.jumpAlias($0.offset), $0.element) }
            + [(tunnel.alias, tunnel.endpoint)]
        for (index, (alias, endpoint)) in endpoints.enumerated() {
            let isMain = index == endpoints.count - 1
            var host: [String: Any] = [
                "alias": alias,
                "hostName": endpoint.host,
                "port": endpoint.port,
                "identityFile": endpoint.identityFile,
                "connectTimeout": tunnel.connectTimeout,
                "keepaliveInterval": tunnel.keepaliveInterval,
                "keepaliveCount": tunnel.keepaliveCount,
            ]
            if let user = endpoint.user { host["user"] = user }
            host.merge(Self.loginModel(endpoint)) { _, new in new }
            switch endpoint.hostKeyPolicy {
            case .pinned:
                host["strictHostKeyChecking"] = "yes"
                host["knownHostsFile"] = knownHostsFile
            case .acceptNew:
                host["strictHostKeyChecking"] = "accept-new"
                host["knownHostsFile"] = knownHostsFile
                learnedAliases.insert(alias)
            case .insecureNoCheck:
                host["strictHostKeyChecking"] = "no"
                host["knownHostsFile"] = "/dev/null"
            }
            for key in endpoint.hostKeys {
                entries.append(["alias": alias, "keyType": key.type, "keyBlob": key.blob])
            }
            if index > 0 {
                host["proxyCommand"] = Self.proxyCommand(ssh: sshProgram, sshConfig: sshConfigPath, via: endpoints[index - 1].0)
            }
            host["controlMaster"] = "no"
            host["controlPath"] = "none"
            if isMain {
                switch control {
                case .none: break
                case .master(let path):
                    host["controlMaster"] = "yes"
                    host["controlPath"] = path
                case .member(let path):
                    host["controlPath"] = path
                case .holding(let path):
                    host["controlMaster"] = "yes"
                    host["controlPath"] = path
                    host["listenersHeld"] = true
                }
                if case .holding = control {} else {
                    host["localForwards"] = tunnel.localForwards.map(Self.forwardModel)
                }
                host["remoteForwards"] = tunnel.remoteForwards.map(Self.forwardModel)
                host["dynamicForwards"] = tunnel.dynamicForwards.map(Self.forwardModel)
                if Self.listensBeyondLoopback(tunnel) { host["gatewayPorts"] = true }
            }
            hosts.append(host)
        }
        for line in (existingKnownHosts ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 3, learnedAliases.contains(String(fields[0])) else { continue }
            entries.append(["alias": String(fields[0]), "keyType": String(fields[1]), "keyBlob": String(fields[2])])
        }
        let base: [String: Any] = [
            "name": tunnel.name, "alias": tunnel.alias, "configFile": configFile,
            "sshConfigPath": sshConfigPath,
        ]
        var configModel = base
        configModel["hosts"] = hosts
        var knownModel = base
        knownModel["entries"] = entries
        return RenderedTunnel(
            sshConfig: sshConfig.render(configModel), knownHosts: knownHosts.render(knownModel),
            askpass: AskpassScript.render(tunnel, warren: warrenProgram))
    }

    /// What each login method needs in ssh_config: askpass needs BatchMode off
    /// (BatchMode disables every prompt, askpass included), a password needs
    /// PasswordAuthentication, an agent without a key file needs IdentitiesOnly
    /// off (else only the default key files' identities are offered).
    static func loginModel(_ endpoint: SSHEndpoint) -> [String: Any] {
        let login = endpoint.login
        var model: [String: Any] = [
            "hasIdentityFile": !endpoint.identityFile.isEmpty,
            "identitiesOnly": endpoint.identityFile.isEmpty ? "no" : "yes",
            "passwordAuthentication": login.passwordFile == nil ? "no" : "yes",
            "batchMode": login.needsAskpass ? "no" : "yes",
            "askpass": login.needsAskpass,
        ]
        if let certificate = login.certificateFile { model["certificateFile"] = certificate }
        if let agent = login.identityAgent { model["identityAgent"] = agent }
        return model
    }

    /// What ProxyJump would run, spelt out so that the hop's ssh logs where
    /// warren reads ssh's own words: `$WARREN_SSH_LOG` (the tunnel's log pipe)
    /// under the supervisor, stderr otherwise. ssh passes the line to
    /// `/bin/sh -c` after expanding `%h` and `%p`; the paths are validated
    /// values without quotes, so single quotes hold them.
    static func proxyCommand(ssh: String, sshConfig: String, via alias: String) -> String {
        "'\(ssh)' -v -E \"${WARREN_SSH_LOG:-/dev/stderr}\" -F '\(sshConfig)' -W '[%h]:%p' \(alias)"
    }

    /// Whether a local or dynamic forward listens on an address other machines
    /// can reach (`--forward-bind 0.0.0.0` in a pod): ssh is then told
    /// `GatewayPorts yes`, its setting for letting remote hosts connect
    /// (OpenSSH 9.2 binds an explicit 0.0.0.0 without it: measured; the
    /// setting states the intent for any ssh that does not).
    static func listensBeyondLoopback(_ tunnel: TunnelConfig) -> Bool {
        (tunnel.localForwards + tunnel.dynamicForwards).contains { forward in
            guard case .tcp(let host?, _) = forward.listen else { return false }
            return !ForwardBind.isLoopback(host)
        }
    }

    private static func forwardModel(_ forward: Forward) -> [String: Any] {
        var model: [String: Any] = ["listen": forward.listen.description]
        if let target = forward.target { model["target"] = target.description }
        return model
    }
}

public struct TemplateError: Error, Sendable, CustomStringConvertible {
    public var template: String
    public var reason: String
    public var description: String { "template \(template): \(reason)" }
}
