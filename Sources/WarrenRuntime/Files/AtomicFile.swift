import Foundation

/// Writes files so that a reader never sees half of one: write a temporary file
/// in the same directory, fsync, rename over the target. Every path goes
/// through `SafeDirectory`: no link is followed and no directory another user
/// controls is written in.
public enum AtomicFile {
    /// Writes `content` to `path` with `mode` unless the file already holds
    /// exactly that content with that mode. Returns whether it wrote. The
    /// directory must exist (see `makeDirectory`).
    @discardableResult
    public static func write(_ content: String, to path: String, mode: mode_t = 0o600, durable: Bool = true) throws -> Bool {
        let path = absolute(path)
        let directory = try SafeDirectory.open((path as NSString).deletingLastPathComponent, create: false)
        return try write(content, named: (path as NSString).lastPathComponent, in: directory, mode: mode, durable: durable)
    }

    /// `write(_:to:mode:)` into a directory already opened and checked.
    @discardableResult
    public static func write(_ content: String, named name: String, in directory: SafeDirectory, mode: mode_t = 0o600, durable: Bool = true) throws -> Bool {
        let data = Array(content.utf8)
        if let file = try? directory.openFile(name, flags: O_RDONLY) {
            defer { close(file) }
            var info = stat()
            if fstat(file, &info) == 0, info.st_mode & 0o7777 == mode, SafeDirectory.readAll(file, limit: data.count + 1) == data {
                return false
            }
        }
        try directory.writeAtomically(data, to: name, mode: mode, durable: durable)
        return true
    }

    /// Creates the directory (and missing parents) with `mode` whatever the
    /// umask. An existing directory is checked (owner, not writable by others,
    /// not a link) but never chmodded.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws {
        _ = try SafeDirectory.open(absolute(path), create: true, mode: mode)
    }

    /// A relative path (`--metrics-file warren.prom`) is taken from the working directory.
    public static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}

/// A file operation that failed, with the path and the system's reason.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var operation: String
    public var code: Int32
    public var detail: String? = nil

    public var description: String {
        "cannot \(operation) \(path): \(detail ?? String(cString: strerror(code)))"
    }
}
