/// Cuts a stream of bytes into lines, however the bytes arrive and however
/// long a line is: a line longer than `limit` bytes is cut there (its first
/// `limit` bytes and a marker are kept, the rest is dropped up to the next
/// newline), never fatal. Strips `\r` before `\n` (ssh ends every line with
/// `\r\n`). Bytes that are not UTF-8 are repaired, never dropped silently.
public struct LineSplitter: Sendable {
    /// The longest line kept whole, in bytes.
    public let limit: Int
    private var pending: [UInt8] = []
    private var discarding = false

    /// What stands at the end of a line that was cut.
    public static let cutMarker = " [warren: line cut]"

    public init(limit: Int = 4096) {
        self.limit = max(16, limit)
    }

    /// The complete lines in `bytes` (with what came before).
    public mutating func append<Bytes: Sequence>(_ bytes: Bytes) -> [String] where Bytes.Element == UInt8 {
        var lines: [String] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if !discarding { lines.append(Self.decode(pending)) }
                pending.removeAll(keepingCapacity: true)
                discarding = false
            } else if !discarding {
                pending.append(byte)
                if pending.count > limit {
                    pending.removeLast(pending.count - limit)
                    lines.append(Self.decode(pending) + Self.cutMarker)
                    pending.removeAll(keepingCapacity: true)
                    discarding = true
                }
            }
        }
        return lines
    }

    /// The last line if it had no newline (at end of stream), else nothing.
    public mutating func finish() -> [String] {
        defer {
            pending.removeAll()
            discarding = false
        }
        return pending.isEmpty || discarding ? [] : [Self.decode(pending)]
    }

    private static func decode(_ bytes: [UInt8]) -> String {
        var line = bytes[...]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        return String(decoding: line, as: UTF8.self)
    }
}
