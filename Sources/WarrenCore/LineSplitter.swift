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
        append(ArraySlice(bytes))
    }

    /// The same for a slice of a read buffer (every read of a child's output):
    /// whole runs up to a newline are copied at once, not a byte at a time.
    public mutating func append(_ bytes: ArraySlice<UInt8>) -> [String] {
        var lines: [String] = []
        var rest = bytes
        while !rest.isEmpty {
            let newline = rest.firstIndex(of: UInt8(ascii: "\n"))
            let run = rest[..<(newline ?? rest.endIndex)]
            if !discarding {
                let room = limit - pending.count
                if run.count > room {
                    pending.append(contentsOf: run.prefix(room))
                    lines.append(Self.decode(pending) + Self.cutMarker)
                    pending.removeAll(keepingCapacity: true)
                    discarding = true
                } else {
                    pending.append(contentsOf: run)
                }
            }
            guard let newline else { break }
            if !discarding { lines.append(Self.decode(pending)) }
            pending.removeAll(keepingCapacity: true)
            discarding = false
            rest = rest[(newline + 1)...]
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
