import Foundation
import WarrenCore

extension SSHLaunch {
    /// The only variables a child (ssh, its ProxyCommand hop, the askpass
    /// helper, ssh-keygen and the other tools) takes from warren's environment.
    /// An allow-list, not a deny-list: warren's environment may hold cloud
    /// credentials, database passwords or systemd's NOTIFY_SOCKET, none of
    /// which ssh needs, and /proc/PID/environ of a child shows them to root
    /// and to the child's own user for as long as it lives. PATH finds the
    /// hop's ssh and the helper's programs, HOME and USER/LOGNAME are what
    /// ssh expects of a login, LANG/LC_* and TZ keep its messages and times
    /// as the operator set them. Everything else a child needs, warren sets.
    public static let inheritedVariables: Set<String> = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ"]

    /// A child's whole environment: the allowed variables of `parent`, then
    /// `changes` (a nil value removes the variable).
    public static func childEnvironment(_ changes: [String: String?], parent: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var out = parent.filter { inheritedVariables.contains($0.key) }
        for (key, value) in changes { out[key] = value }
        return out
    }

    /// The environment ssh needs for the tunnel's login method, starting from
    /// `isolated` (no agent, no askpass, no display):
    /// - `identity_agent = "SSH_AUTH_SOCK"`: warren's own SSH_AUTH_SOCK is passed on
    ///   (an agent given by path is named in ssh_config and needs nothing here);
    /// - `password_file` or `passphrase_file`: `SSH_ASKPASS` names the tunnel's
    ///   askpass helper and `SSH_ASKPASS_REQUIRE=force` makes ssh use it without a
    ///   display or terminal. The secret itself is never in the environment.
    public static func environment(for tunnel: TunnelConfig, askpassPath: String,
                                   parent: [String: String] = ProcessInfo.processInfo.environment) -> [String: String?] {
        var environment = isolated
        let login = tunnel.endpoint.login
        if login.usesEnvironmentAgent { environment["SSH_AUTH_SOCK"] = .some(parent["SSH_AUTH_SOCK"]) }
        if login.needsAskpass {
            environment["SSH_ASKPASS"] = askpassPath
            environment["SSH_ASKPASS_REQUIRE"] = "force"
        }
        return environment
    }
}
