import ArgumentParser
import Foundation
import WarrenCore
import WarrenRuntime

/// How one replica of a fleet runs the shared config: `--shard` (which
/// tunnels are its own) and `--forward-bind` (where their forwards listen).
/// Each falls back on an environment variable, so a pod's or a unit's
/// environment reaches `warren check` run inside it as well as `warren run`.
struct DeploymentOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Run only this shard's tunnels: I/N (0-based), or auto/N to take I from the host name's trailing -<ordinal> (StatefulSet pods).",
        discussion: "Else $WARREN_SHARD. Every replica computes the same assignment from the config (rendezvous hashing of tunnel names); see `warren where`.",
        valueName: "I/N"))
    var shard: String?

    @Option(help: ArgumentHelp(
        "Every local and dynamic forward listens on this address instead of the config's.",
        discussion: "Else $WARREN_FORWARD_BIND. A numeric address: 0.0.0.0 in a pod (ssh is then told GatewayPorts yes), or 127.0.0.2 to run several shards on one machine. A dynamic forward moved beyond loopback is an open SOCKS proxy: refused (exit 78) unless allow_public_socks = true.",
        valueName: "ADDRESS"))
    var forwardBind: String?

    func validate() throws {
        _ = try request()
        _ = try bind()
    }

    /// The shard asked for, with `auto` resolved from this machine's host name.
    func resolvedShard() throws -> ShardSpec? {
        guard let (request, source) = try request() else { return nil }
        switch request.resolve(hostName: Self.hostName()) {
        case .success(let spec): return spec
        case .failure(let error): throw ValidationError("\(source) \(request): \(error)")
        }
    }

    /// The forward address asked for.
    func bind() throws -> ForwardBind? {
        guard let (text, source) = Self.value(forwardBind, "--forward-bind", env: "WARREN_FORWARD_BIND") else { return nil }
        switch ForwardBind.parse(text) {
        case .success(let bind): return bind
        case .failure(let error): throw ValidationError("\(source): \(error)")
        }
    }

    /// `config` as this replica runs it; a config that cannot be (replicas above
    /// the shard count, forwards that collide once rebound) prints every issue
    /// and exits 78, like any invalid config.
    func apply(to config: WarrenConfig, shard: ShardSpec?) throws -> WarrenConfig {
        do {
            return try config.deployed(shard: shard, bind: bind())
        } catch let error as ConfigError {
            throw CommandFailure(error.description, exit: ExitCodes.config)
        }
    }

    private func request() throws -> (ShardRequest, String)? {
        guard let (text, source) = Self.value(shard, "--shard", env: "WARREN_SHARD") else { return nil }
        switch ShardRequest.parse(text) {
        case .success(let request): return (request, source)
        case .failure(let error): throw ValidationError("\(source): \(error)")
        }
    }

    /// The option, else the environment variable (empty counts as unset), with the name to blame.
    private static func value(_ option: String?, _ name: String, env: String) -> (String, String)? {
        if let option { return (option, name) }
        if let value = ProcessInfo.processInfo.environment[env], !value.isEmpty { return (value, "$\(env)") }
        return nil
    }

    /// gethostname(2): a pod's host name is its name (`warren-2`).
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
