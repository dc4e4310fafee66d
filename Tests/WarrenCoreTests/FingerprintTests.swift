import Foundation
import Testing
@testable import WarrenCore
import WarrenTestSupport

/// Host key fingerprints as OpenSSH prints them, computed without a process.
@Suite struct FingerprintTests {
    /// (key, `ssh-keygen -lf` line) pairs recorded from the real tool.
    static let recorded: [(key: String, line: String)] = {
        let url = Bundle.module.url(forResource: "Fixtures/keys/ssh-keygen-lf", withExtension: "txt")!
        let lines = try! String(contentsOf: url, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
        return stride(from: 0, to: lines.count, by: 2).map { (lines[$0], lines[$0 + 1]) }
    }()

    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        // 64 bytes: the padding needs a block of its own.
        (String(repeating: "a", count: 64), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
    ])
    func sha256MatchesTheStandardVectors(_ input: String, _ hex: String) {
        let digest = SHA256.hash(Array(input.utf8))
        #expect(digest.map { String(format: "%02x", $0) }.joined() == hex)
    }

    @Test func base64RoundTripsEveryLength() {
        for length in 0..<70 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let text = Base64.encode(bytes)
            #expect(text == Data(bytes).base64EncodedString())
            #expect(Base64.decode(text) == bytes)
            #expect(Base64.decode(Base64.encode(bytes, padding: false)) == bytes)
        }
        #expect(Base64.decode("not base64!") == nil)
        #expect(Base64.decode("A") == nil)
    }

    @Test func fingerprintsAndSizesMatchSSHKeygen() throws {
        #expect(Self.recorded.count == 5)
        for (text, line) in Self.recorded {
            let key = try HostKey.parse(text).get()
            #expect(HostKeyCheck.describe(key) == line, "\(text.prefix(40))")
        }
    }

    @Test func fingerprintPinsParseAndMatch() throws {
        let (text, line) = Self.recorded[0]
        let key = try HostKey.parse(text).get()
        let printed = String(line.split(separator: " ")[1])
        let pin = try HostKeyFingerprint.parse(printed).get()
        #expect(pin.description == printed)
        #expect(pin.matches(key))
        #expect(try HostKeyFingerprint.parse(printed + "=").get() == pin, "a padded fingerprint is the same pin")
        #expect(!pin.matches(try HostKey.parse(Self.recorded[4].key).get()))
    }

    @Test(arguments: [
        ("SHA256:short", "is not a SHA-256 fingerprint"),
        ("SHA256:luCDnNxNjyvBVWpOib/Eow0uJ3lJqntge7xjbm9Sou!", "is not a SHA-256 fingerprint"),
        ("MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48", "MD5 fingerprints are not accepted"),
        ("sha256:luCDnNxNjyvBVWpOib/Eow0uJ3lJqntge7xjbm9SouI", "a fingerprint is \"SHA256:\""),
    ])
    func badFingerprintsAreRefusedWithTheReason(_ text: String, _ reason: String) {
        guard case .failure(let error) = HostKeyFingerprint.parse(text) else {
            Issue.record("\(text) parsed")
            return
        }
        #expect(error.reason.contains(reason), "\(error.reason)")
    }

    @Test func keyscanOutputParses() {
        let out = """
            # 127.0.0.1:2222 SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10
            [127.0.0.1]:2222 \(Self.recorded[0].key)
            [127.0.0.1]:2222 \(Self.recorded[1].key)
            [127.0.0.1]:2222 ssh-ed25519 !!!
            """
        let keys = HostKeyCheck.parseKeyLines(out)
        #expect(keys.map(\.type) == ["ssh-ed25519", "ssh-rsa"])
        #expect(HostKeyCheck.preferred(keys.reversed())?.type == "ssh-ed25519")
        #expect(HostKeyCheck.parseKeyLines("warren-a \(Self.recorded[0].key)\nwarren-b \(Self.recorded[4].key)\n", host: "warren-b").count == 1)
    }
}
