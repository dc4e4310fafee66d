import Testing
import WarrenCore

/// How ssh's output is cut into lines, however the reads fall.
@Suite struct LineSplitterTests {
    static let marker = LineSplitter.cutMarker

    /// (limit, reads, lines, what `finish()` gives).
    static let cases: [(Int, [String], [String], [String])] = [
        (16, ["one\ntwo\n"], ["one", "two"], []),
        (16, ["on", "e\r\nt", "wo"], ["one"], ["two"]),
        (16, ["\n\n"], ["", ""], []),
        // A line of exactly the limit is whole; one byte more is cut there, the rest dropped.
        (16, [String(repeating: "a", count: 16) + "\n"], [String(repeating: "a", count: 16)], []),
        (16, [String(repeating: "b", count: 17) + "\nnext\n"], [String(repeating: "b", count: 16) + marker, "next"], []),
        (16, [String(repeating: "c", count: 10), String(repeating: "c", count: 10), "tail\nafter"], [String(repeating: "c", count: 16) + marker], ["after"]),
        (16, [String(repeating: "d", count: 16), "x"], [String(repeating: "d", count: 16) + marker], []),
        // A cut line's remainder never leaks into the next line.
        (16, [String(repeating: "e", count: 40), String(repeating: "e", count: 40), "\nok\n"], [String(repeating: "e", count: 16) + marker, "ok"], []),
        (16, ["h\u{e9}llo\n"], ["h\u{e9}llo"], []),
    ]

    @Test(arguments: cases.indices)
    func linesAreTheSameHoweverTheReadsFall(_ index: Int) {
        let (limit, reads, lines, rest) = Self.cases[index]
        var whole = LineSplitter(limit: limit)
        var got: [String] = []
        for read in reads { got += whole.append(Array(read.utf8)[...]) }
        #expect(got == lines)
        #expect(whole.finish() == rest)
        // Byte by byte, through the generic entry: the same lines.
        var single = LineSplitter(limit: limit)
        var bytewise: [String] = []
        for byte in reads.joined().utf8 { bytewise += single.append([byte]) }
        #expect(bytewise == lines)
        #expect(single.finish() == rest)
    }
}
