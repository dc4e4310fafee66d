import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private directory for one fixture or test, created by `mkdtemp` (mode 0700).
///
/// Paths stay short on purpose: unix socket paths (ssh ControlPath, agent
/// sockets) are limited to 107 bytes, so the default is `/tmp/<prefix>XXXXXX`.
public struct TemporaryDirectory: Sendable {
    /// The absolute path of the directory.
    public let path: String

    /// Creates `<parent>/<prefix>XXXXXX`. The parent must exist.
    public init(prefix: String = "w-", in parent: String = "/tmp") throws {
        var template = Array("\(parent)/\(prefix)XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else {
            throw FixtureError("mkdtemp \(parent)/\(prefix)XXXXXX", errno: errno)
        }
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The path of `name` inside this directory (nothing is created).
    public func appending(_ name: String) -> String {
        "\(path)/\(name)"
    }

    /// Writes `text` to `name` inside this directory with the given mode and returns its path.
    @discardableResult
    public func write(_ text: String, to name: String, mode: Int = 0o600) throws -> String {
        let file = appending(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        guard chmod(file, mode_t(mode)) == 0 else { throw FixtureError("chmod \(file)", errno: errno) }
        return file
    }

    /// Removes the directory and everything in it. Safe to call twice.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
