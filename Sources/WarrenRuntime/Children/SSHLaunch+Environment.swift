import WarrenCore

extension SSHLaunch {
    /// The environment ssh needs for the tunnel's login method, starting from
    /// `isolated` (no agent, no askpass, no display):
    /// - `identity_agent = "SSH_AUTH_SOCK"`: warren's own SSH_AUTH_SOCK is passed on
    ///   (an agent given by path is named in ssh_config and needs nothing here);
    /// - `password_file` or `passphrase_file`: `SSH_ASKPASS` names the tunnel's
    ///   askpass helper and `SSH_ASKPASS_REQUIRE=force` makes ssh use it without a
    ///   display or terminal. The secret itself is never in the environment.
    public static func environment(for tunnel: TunnelConfig, askpassPath: String) -> [String: String?] {
        var environment = isolated
        let login = tunnel.endpoint.login
        if login.usesEnvironmentAgent { environment.removeValue(forKey: "SSH_AUTH_SOCK") }
        if login.needsAskpass {
            environment["SSH_ASKPASS"] = askpassPath
            environment["SSH_ASKPASS_REQUIRE"] = "force"
        }
        return environment
    }
}
