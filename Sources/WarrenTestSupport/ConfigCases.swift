/// Config texts shared by the unit and the integration tests. `@KEY@` stands
/// for an identity file that exists; `@STATE@` for a state directory.
public enum ConfigCases {
    public static let hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"

    /// A valid config with every tunnel shape.
    public static let valid = """
        state_dir = "@STATE@"

        [defaults]
        user = "tunnel"
        identity_file = "@KEY@"
        keepalive_interval = 5
        keepalive_count = 2
        connect_timeout = 4

        [tunnels.local]
        host = "bastion.example.com"
        host_key = "\(hostKey)"
        local_forward = ["127.0.0.1:15432:db.internal:5432", "[::1]:15433:db.internal:5432"]

        [tunnels.remote]
        host = "192.0.2.10"
        port = 2222
        host_key = ["\(hostKey)"]
        remote_forward = ["127.0.0.1:8080:localhost:80", "9090"]

        [tunnels.socks]
        host = "bastion.example.com"
        host_key_policy = "accept-new"
        dynamic_forward = ["127.0.0.1:1080"]

        [tunnels.sockets]
        host = "bastion.example.com"
        host_key = "\(hostKey)"
        local_forward = ["/tmp/warren-test.sock:db.internal:5432", "15434:/run/postgresql/.s.PGSQL.5432"]

        [tunnels.jumped]
        host = "db-bastion.internal"
        host_key = "\(hostKey)"
        local_forward = "127.0.0.1:15435:db.internal:5432"
        enabled = false

        [[tunnels.jumped.jump]]
        host = "jump1.example.com"
        host_key = "\(hostKey)"

        [[tunnels.jumped.jump]]
        host = "jump2.example.com"
        port = 2200
        user = "hop"
        host_key = "\(hostKey)"
        """

    /// A bad config, and the key path (or `line:column`) its first issue must name.
    public struct Bad: Sendable, CustomStringConvertible {
        public var name: String
        public var text: String
        public var path: String
        public var description: String { name }
    }

    static func tunnel(_ body: String, name: String = "db") -> String {
        """
        [tunnels.\(name)]
        identity_file = "@KEY@"
        \(body)
        """
    }

    static let fine = "host = \"bastion.example.com\"\nhost_key = \"\(hostKey)\"\n"

    public static let bad: [Bad] = [
        Bad(name: "syntax error", text: "[tunnels.db\nhost = 1", path: "1:12"),
        Bad(name: "duplicate key", text: tunnel(fine + "host = \"x\"\nlocal_forward = \"1:a:2\""), path: "5:8"),
        Bad(name: "unknown top key", text: "stat_dir = \"/x\"\n" + tunnel(fine + "local_forward = \"1:a:2\""), path: "stat_dir"),
        Bad(name: "unknown tunnel key", text: tunnel(fine + "local_forwrd = \"1:a:2\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.local_forwrd"),
        Bad(name: "unknown defaults key", text: "[defaults]\nkeepalive = 3\n" + tunnel(fine + "local_forward = \"1:a:2\""), path: "defaults.keepalive"),
        Bad(name: "no host", text: tunnel("host_key = \"\(hostKey)\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.host"),
        Bad(name: "no forward", text: tunnel(fine), path: "tunnels.db.local_forward"),
        Bad(name: "no host key", text: tunnel("host = \"b\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.host_key"),
        Bad(name: "host key with accept-new", text: tunnel(fine + "host_key_policy = \"accept-new\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.host_key"),
        Bad(name: "bad policy", text: tunnel(fine + "host_key_policy = \"trust-me\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.host_key_policy"),
        Bad(name: "bad host key", text: tunnel("host = \"b\"\nhost_key = \"ssh-ed25519 not base64!\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.host_key"),
        Bad(name: "port too big", text: tunnel(fine + "port = 70000\nlocal_forward = \"1:a:2\""), path: "tunnels.db.port"),
        Bad(name: "port zero", text: tunnel(fine + "port = 0\nlocal_forward = \"1:a:2\""), path: "tunnels.db.port"),
        Bad(name: "port is a string", text: tunnel(fine + "port = \"22\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.port"),
        Bad(name: "newline in host", text: tunnel("host = \"b\\nProxyCommand evil\"\nhost_key = \"\(hostKey)\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.host"),
        Bad(name: "CR in user", text: tunnel(fine + "user = \"u\\r\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.user"),
        Bad(name: "NUL in host", text: tunnel("host = \"b\\u0000c\"\nhost_key = \"\(hostKey)\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.host"),
        Bad(name: "NUL escape in a key", text: tunnel(fine + "\"a\\u0000b\" = 1\nlocal_forward = \"1:a:2\""), path: "tunnels.db"),
        Bad(name: "raw NUL hides the rest", text: "# a\u{0}\n" + tunnel(fine + "local_forward = \"1:a:2\"\nbogus = 1"), path: "1:4"),
        Bad(name: "deep dotted key", text: String(repeating: "a.", count: 20000) + "b = 1\n" + tunnel(fine + "local_forward = \"1:a:2\""), path: "a.a.a..."),
        Bad(name: "deep inline arrays", text: "x = " + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "\n" + tunnel(fine + "local_forward = \"1:a:2\""), path: "x[0][0]..."),
        Bad(name: "escape in user", text: tunnel(fine + "user = \"u\\u001b[31m\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.user"),
        Bad(name: "space in host", text: tunnel("host = \"b c\"\nhost_key = \"\(hostKey)\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.host"),
        Bad(name: "quote in user", text: tunnel(fine + "user = \"u\\\"x\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.user"),
        Bad(name: "leading dash host", text: tunnel("host = \"-oProxyCommand=x\"\nhost_key = \"\(hostKey)\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.host"),
        Bad(name: "leading dash user", text: tunnel(fine + "user = \"-l\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.user"),
        Bad(name: "percent token in identity", text: "[tunnels.db]\nidentity_file = \"/home/%u/key\"\n" + fine + "local_forward = \"1:a:2\"", path: "tunnels.db.identity_file"),
        Bad(name: "percent in forward", text: tunnel(fine + "local_forward = \"/tmp/%h.sock:a:2\""), path: "tunnels.db.local_forward"),
        Bad(name: "name with slash", text: tunnel(fine + "local_forward = \"1:a:2\"", name: "\"a/b\""), path: "tunnels.\"a/b\""),
        Bad(name: "name with dots", text: tunnel(fine + "local_forward = \"1:a:2\"", name: "\"..\""), path: "tunnels.\"..\""),
        Bad(name: "name with leading dash", text: tunnel(fine + "local_forward = \"1:a:2\"", name: "\"-x\""), path: "tunnels.\"-x\""),
        Bad(name: "name too long", text: tunnel(fine + "local_forward = \"1:a:2\"", name: String(repeating: "a", count: 65)), path: "tunnels.\"\(String(repeating: "a", count: 65))\""),
        Bad(name: "forward garbage", text: tunnel(fine + "local_forward = \"nonsense\""), path: "tunnels.db.local_forward"),
        Bad(name: "forward port range", text: tunnel(fine + "local_forward = [\"1:a:2\", \"127.0.0.1:99999:a:5432\"]"), path: "tunnels.db.local_forward[1]"),
        Bad(name: "forward target dash", text: tunnel(fine + "local_forward = [\"15432:-oops:5432\"]"), path: "tunnels.db.local_forward[0]"),
        Bad(name: "dynamic with target", text: tunnel(fine + "dynamic_forward = \"1080:a:2\""), path: "tunnels.db.dynamic_forward"),
        Bad(name: "forward not a string", text: tunnel(fine + "local_forward = [15432]"), path: "tunnels.db.local_forward[0]"),
        Bad(name: "missing identity file", text: "[tunnels.db]\nidentity_file = \"/nonexistent/warren-key\"\n" + fine + "local_forward = \"1:a:2\"", path: "tunnels.db.identity_file"),
        Bad(name: "keepalive zero", text: tunnel(fine + "keepalive_interval = 0\nlocal_forward = \"1:a:2\""), path: "tunnels.db.keepalive_interval"),
        Bad(name: "connect timeout huge", text: tunnel(fine + "connect_timeout = 4000\nlocal_forward = \"1:a:2\""), path: "tunnels.db.connect_timeout"),
        Bad(name: "backoff inverted", text: tunnel(fine + "backoff_min = 30\nbackoff_max = 5\nlocal_forward = \"1:a:2\""), path: "tunnels.db.backoff_max"),
        Bad(name: "enabled not bool", text: tunnel(fine + "enabled = \"yes\"\nlocal_forward = \"1:a:2\""), path: "tunnels.db.enabled"),
        Bad(name: "duplicate local port", text: tunnel(fine + "local_forward = \"127.0.0.1:15432:a:1\"") + "\n" + tunnel(fine + "local_forward = \"15432:b:2\"", name: "db2"), path: "tunnels.db2.local_forward[0]"),
        Bad(name: "wildcard clashes", text: tunnel(fine + "dynamic_forward = \"*:1080\"\nlocal_forward = \"127.0.0.2:1080:a:1\""), path: "tunnels.db.dynamic_forward[0]"),
        Bad(name: "jump without host key", text: tunnel(fine + "local_forward = \"1:a:2\"\n[[tunnels.db.jump]]\nhost = \"j\""), path: "tunnels.db.jump[0].host_key"),
        Bad(name: "jump bad host", text: tunnel(fine + "local_forward = \"1:a:2\"\n[[tunnels.db.jump]]\nhost = \"j;rm\"\nhost_key = \"\(hostKey)\""), path: "tunnels.db.jump[0].host"),
        Bad(name: "jump unknown key", text: tunnel(fine + "local_forward = \"1:a:2\"\n[[tunnels.db.jump]]\nhost = \"j\"\nhost_key = \"\(hostKey)\"\nforward = 1"), path: "tunnels.db.jump[0].forward"),
        Bad(name: "tunnels not a table", text: "tunnels = 3", path: "tunnels"),
        Bad(name: "no tunnels", text: "state_dir = \"/tmp/x\"", path: "tunnels"),
        Bad(name: "state dir with space", text: "state_dir = \"/tmp/a b\"\n" + tunnel(fine + "local_forward = \"1:a:2\""), path: "state_dir"),
    ]
}
