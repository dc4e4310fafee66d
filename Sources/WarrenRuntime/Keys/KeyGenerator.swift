import Foundation
import WarrenCore

/// Makes warren's key pairs with the system `ssh-keygen`.
public enum KeyGenerator {
    /// A key pair that now exists.
    public struct Created: Sendable {
        public var privateKey: String
        public var publicKeyFile: String
        /// The `.pub` line as ssh-keygen wrote it.
        public var publicKeyLine: String
        /// Whether an existing pair was replaced (`--force`).
        public var replaced: Bool
    }

    public enum Failure: Error, CustomStringConvertible {
        /// A key is already there and `force` was not given.
        case exists(String)
        case keygen(String)
        case file(String)

        public var description: String {
            switch self {
            case .exists(let path):
                return "\(path) already exists; warren never overwrites a key: --force replaces it (the old key then stops working wherever its public key was authorized)"
            case .keygen(let message): return message
            case .file(let message): return message
            }
        }
    }

    /// Creates `path` (0600) and `path.pub` (0644) in a 0700 directory. The pair
    /// is made under temporary names beside them and then moved into place:
    /// without `force` by link(2), which refuses to replace a file even if one
    /// appeared meanwhile; with `force` by rename(2).
    public static func generate(
        type: KeyType, bits: Int?, path: String, comment: String, force: Bool, sshBinary: String? = nil
    ) async throws(Failure) -> Created {
        let directory = (path as NSString).deletingLastPathComponent
        let existed = FileManager.default.fileExists(atPath: path) || FileManager.default.fileExists(atPath: path + ".pub")
        if existed && !force { throw .exists(FileManager.default.fileExists(atPath: path) ? path : path + ".pub") }
        do {
            try makePrivateDirectories(directory)
        } catch {
            throw .file("\(error)")
        }

        let temporary = "\(directory)/.\((path as NSString).lastPathComponent).new-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer {
            unlink(temporary)
            unlink(temporary + ".pub")
        }
        var arguments = ["-q", "-t", type.rawValue, "-N", "", "-C", comment, "-f", temporary]
        if type == .rsa { arguments += ["-b", String(bits ?? KeyType.defaultRSABits)] }
        let keygen = ToolCommand.openSSHTool("ssh-keygen", sshBinary: sshBinary)
        let result: ToolResult
        do {
            result = try await ToolCommand.run(keygen, arguments, timeout: 120)
        } catch {
            throw .keygen("cannot run \(keygen): \(error)")
        }
        guard result.succeeded else {
            let said = (result.stderr + result.stdout).trimmingCharacters(in: .whitespacesAndNewlines)
            throw .keygen("ssh-keygen \(arguments.joined(separator: " ")) failed\(result.timedOut ? " (timed out)" : ""): \(said)")
        }
        guard chmod(temporary, 0o600) == 0, chmod(temporary + ".pub", 0o644) == 0 else {
            throw .file("cannot chmod the new key \(temporary): \(String(cString: strerror(errno)))")
        }
        guard let publicLine = try? String(contentsOfFile: temporary + ".pub", encoding: .utf8) else {
            throw .file("ssh-keygen wrote no public key at \(temporary).pub")
        }
        try place(temporary, at: path, force: force)
        do {
            try place(temporary + ".pub", at: path + ".pub", force: force)
        } catch {
            unlink(path)  // ours, placed a moment ago: do not leave half a pair
            throw error
        }
        return Created(
            privateKey: path, publicKeyFile: path + ".pub",
            publicKeyLine: publicLine.trimmingCharacters(in: .whitespacesAndNewlines), replaced: existed)
    }

    private static func place(_ source: String, at destination: String, force: Bool) throws(Failure) {
        if force {
            guard rename(source, destination) == 0 else {
                throw .file("cannot move the new key to \(destination): \(String(cString: strerror(errno)))")
            }
            return
        }
        guard link(source, destination) == 0 else {
            if errno == EEXIST { throw .exists(destination) }
            throw .file("cannot create \(destination): \(String(cString: strerror(errno)))")
        }
    }

    /// `<state_dir>`, `<state_dir>/keys` and a tunnel's key directory, each
    /// 0700 when created; below the state directory no link is followed.
    static func makePrivateDirectories(_ directory: String) throws {
        var below: [String] = []
        var current = directory
        while !current.isEmpty && current != "/" {
            let name = (current as NSString).lastPathComponent
            below.insert(name, at: 0)
            current = (current as NSString).deletingLastPathComponent
            if name == "keys" { break }
        }
        guard below.first == "keys" else {
            try AtomicFile.makeDirectory(directory, mode: 0o700)
            return
        }
        var opened = try SafeDirectory.open(AtomicFile.absolute(current))
        for name in below { opened = try opened.subdirectory(name) }
    }

    /// The comment put in a new key: `warren[-TUNNEL]@HOSTNAME`, so the bastion's
    /// admin can tell whose key a line is.
    public static func comment(tunnel: String?) -> String {
        // gethostname, not ProcessInfo.hostName, which may ask DNS for a canonical name.
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        let raw = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let host = raw.unicodeScalars.filter { ($0.isASCII && CharacterSet.alphanumerics.contains($0)) || $0 == "." || $0 == "-" }
        let name = tunnel.map { "warren-\($0)" } ?? "warren"
        return host.isEmpty ? name : "\(name)@\(String(String.UnicodeScalarView(host)))"
    }
}
