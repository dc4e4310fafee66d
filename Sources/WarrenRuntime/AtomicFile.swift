import Foundation

/// Writes files so that a reader never sees half of one: write a temporary file
/// in the same directory, fsync, rename over the target.
public enum AtomicFile {
    /// Writes `content` to `path` with `mode` unless the file already holds
    /// exactly that content with that mode. Returns whether it wrote.
    @discardableResult
    public static func write(_ content: String, to path: String, mode: mode_t = 0o600) throws -> Bool {
        let data = Array(content.utf8)
        if let existing = FileManager.default.contents(atPath: path), Array(existing) == data,
            let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let perms = attributes[.posixPermissions] as? Int, mode_t(perms) == mode
        {
            return false
        }
        let directory = (path as NSString).deletingLastPathComponent
        var template = Array("\(directory)/.\((path as NSString).lastPathComponent).XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw FileError(path: path, operation: "create a temporary file for", code: errno) }
        let tempPath = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var ok = false
        defer {
            if !ok { unlink(tempPath) }
        }
        guard fchmod(fd, mode) == 0 else {
            close(fd)
            throw FileError(path: tempPath, operation: "chmod", code: errno)
        }
        var offset = 0
        while offset < data.count {
            let n = data[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                close(fd)
                throw FileError(path: tempPath, operation: "write", code: code)
            }
            offset += n
        }
        fsync(fd)
        close(fd)
        guard rename(tempPath, path) == 0 else { throw FileError(path: path, operation: "rename into", code: errno) }
        ok = true
        return true
    }

    /// Creates the directory (and parents) and makes it `mode`.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw FileError(path: path, operation: "create directory", code: EACCES, detail: "\(error.localizedDescription)")
        }
        guard chmod(path, mode) == 0 else { throw FileError(path: path, operation: "chmod", code: errno) }
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
