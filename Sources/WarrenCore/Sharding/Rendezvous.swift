/// Rendezvous (highest-random-weight) hashing: each tunnel gives each shard a
/// weight, a hash of (tunnel name, shard index), and runs on the shards with the
/// highest weights. Growing from N to N+1 shards moves only the tunnels whose
/// new shard outweighs their old ones, about 1/(N+1) of them; the others stay.
///
/// The hash is SHA-256, fixed by its standard: every process, machine and Swift
/// version computes the same weights (Swift's `Hasher` is seeded per process and
/// would not).
public struct Rendezvous: Sendable, Hashable {
    /// How many shards there are.
    public var count: Int

    public init(count: Int) {
        self.count = count
    }

    /// The weight of `shard` for `name`: the first 8 bytes of
    /// SHA-256("warren-shard" NUL name NUL decimal index), big-endian.
    public func weight(of name: String, on shard: Int) -> UInt64 {
        let message = Array("warren-shard".utf8) + [0] + Array(name.utf8) + [0] + Array(String(shard).utf8)
        return SHA256.hash(message).prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The shards that run `name`, best first: its `replicas` highest-weight
    /// shards (all of them when `replicas` is `count` or more). Ties, which
    /// SHA-256 makes vanishingly rare, go to the lower index.
    public func shards(for name: String, replicas: Int = 1) -> [Int] {
        let ranked = (0..<count).map { (shard: $0, weight: weight(of: name, on: $0)) }
            .sorted { $0.weight != $1.weight ? $0.weight > $1.weight : $0.shard < $1.shard }
        return ranked.prefix(max(0, replicas)).map(\.shard)
    }
}
