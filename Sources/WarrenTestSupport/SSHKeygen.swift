import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Key pairs made by the real `ssh-keygen`, with no passphrase.
public enum SSHKeygen {
    public static let path = "/usr/bin/ssh-keygen"

    /// Creates `<file>` (private, 0600) and `<file>.pub` with
    /// `ssh-keygen -q -t TYPE -N "" -f FILE`, replacing any existing pair.
    /// Returns the public key line (`ssh-ed25519 AAAA... comment`).
    @discardableResult
    public static func generate(at file: String, type: String = "ed25519", comment: String? = nil) throws -> String {
        unlink(file)
        unlink(file + ".pub")
        var args = ["-q", "-t", type, "-N", "", "-f", file]
        if let comment { args += ["-C", comment] }
        let log = file + ".keygen.log"
        defer { unlink(log) }
        let (status, output) = try SpawnedProcess.run(path, args, log: log)
        guard status == 0 else {
            throw FixtureError("ssh-keygen \(args.joined(separator: " ")) exited \(status): \(output)")
        }
        guard chmod(file, 0o600) == 0 else { throw FixtureError("chmod 600 \(file)", errno: errno) }
        return try String(contentsOfFile: file + ".pub", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The first two fields of a public key line: `ssh-ed25519 AAAA...`, without the comment.
    public static func keyWithoutComment(_ line: String) -> String {
        line.split(separator: " ").prefix(2).joined(separator: " ")
    }
}
