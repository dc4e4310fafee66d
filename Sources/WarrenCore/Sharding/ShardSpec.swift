/// Which shard of how many this supervisor is (`--shard I/N`): 0-based `index`
/// below `count`. Every replica computes the same assignment from the same
/// config and `count`, so there is nothing to coordinate.
public struct ShardSpec: Sendable, Hashable, Codable, CustomStringConvertible {
    /// This shard, 0-based (a StatefulSet pod's ordinal).
    public var index: Int
    /// How many shards there are (the StatefulSet's replica count).
    public var count: Int

    /// The most shards warren accepts: far beyond any fleet, small enough that a
    /// typo (`--shard 0/30000`) is caught.
    public static let maxCount = 1024

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// `I/N`, as typed.
    public var description: String { "\(index)/\(count)" }

    /// Whether this shard runs `tunnel`: it is among the tunnel's `replicas`
    /// highest-weight shards.
    public func runs(_ tunnel: TunnelConfig) -> Bool {
        Rendezvous(count: count).shards(for: tunnel.name, replicas: tunnel.replicas).contains(index)
    }

    /// Status and JSON keys; public interface in status.json.
    enum CodingKeys: String, CodingKey {
        case index, count
    }
}

/// What `--shard` or `WARREN_SHARD` asked for, before the host name is known.
public enum ShardRequest: Sendable, Hashable, CustomStringConvertible {
    /// `I/N`: this is shard I.
    case fixed(ShardSpec)
    /// `auto/N`: the shard is the host name's trailing `-<ordinal>` (StatefulSet pods
    /// are named `NAME-0`, `NAME-1`, ...).
    case auto(count: Int)

    public var description: String {
        switch self {
        case .fixed(let spec): return spec.description
        case .auto(let count): return "auto/\(count)"
        }
    }

    /// Parses `I/N` or `auto/N`; on failure, why (without the option's name).
    public static func parse(_ text: String) -> Result<ShardRequest, ShardError> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        let shape = "\"\(TerminalText.escape(text))\" is not I/N or auto/N (for example 0/3: the first of three shards)"
        guard parts.count == 2, let count = Int(parts[1]) else { return .failure(ShardError(shape)) }
        guard (1...ShardSpec.maxCount).contains(count) else {
            return .failure(ShardError("the shard count \(count) must be 1-\(ShardSpec.maxCount)"))
        }
        if parts[0] == "auto" { return .success(.auto(count: count)) }
        guard let index = Int(parts[0]) else { return .failure(ShardError(shape)) }
        guard (0..<count).contains(index) else {
            return .failure(ShardError("shard \(index) is not one of the \(count) shards (0-\(count - 1)); shards are counted from 0"))
        }
        return .success(.fixed(ShardSpec(index: index, count: count)))
    }

    /// The shard, taking `auto`'s index from `hostName`'s trailing `-<ordinal>`.
    public func resolve(hostName: String) -> Result<ShardSpec, ShardError> {
        switch self {
        case .fixed(let spec):
            return .success(spec)
        case .auto(let count):
            let name = TerminalText.escape(hostName)
            guard let dash = hostName.lastIndex(of: "-"), let ordinal = Int(hostName[hostName.index(after: dash)...]),
                hostName[hostName.index(after: dash)...].allSatisfy(\.isASCII), ordinal >= 0
            else {
                return .failure(ShardError("auto/\(count) takes the shard from the host name's trailing -<ordinal>, as StatefulSet pods are named (warren-0, warren-1, ...), but the host name \"\(name)\" has none; give the shard itself, e.g. 0/\(count)"))
            }
            guard ordinal < count else {
                return .failure(ShardError("the host name \"\(name)\" makes this shard \(ordinal), but auto/\(count) has shards 0-\(count - 1): set N to the StatefulSet's replicas"))
            }
            return .success(ShardSpec(index: ordinal, count: count))
        }
    }
}

/// A `--shard` value that cannot be used, and why.
public struct ShardError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
