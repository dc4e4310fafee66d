import Foundation

extension SafeDirectory {
    /// Writes `data` to `name` so that a reader never sees half of it: a new
    /// temporary file (O_EXCL, O_NOFOLLOW, `mode` set with fchmod whatever the
    /// umask), fsync, renameat over `name`. rename replaces a link planted at
    /// `name`; it never writes through one.
    /// `durable: false` skips the fsync, for files that only show the present
    /// (status.json, a pid file): after a crash they are rewritten anyway.
    public func writeAtomically(_ data: [UInt8], to name: String, mode: mode_t, durable: Bool = true) throws(UnsafePathError) {
        try Self.requireComponent(name, in: path)
        let (temporary, tfd) = try createTemporary(for: name)
        var placed = false
        defer {
            close(tfd)
            if !placed { unlinkat(fd, temporary, 0) }
        }
        guard fchmod(tfd, mode) == 0 else { throw UnsafePathError(path: "\(path)/\(temporary)", problem: .system(errno, "chmod")) }
        var offset = 0
        while offset < data.count {
            let n = data[offset...].withUnsafeBytes { Glibc.write(tfd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw UnsafePathError(path: "\(path)/\(temporary)", problem: .system(errno, "write"))
            }
            offset += n
        }
        if durable { fsync(tfd) }
        guard renameat(fd, temporary, fd, name) == 0 else {
            throw UnsafePathError(path: "\(path)/\(name)", problem: .system(errno, "rename into"))
        }
        placed = true
    }

    private func createTemporary(for name: String) throws(UnsafePathError) -> (String, Int32) {
        for _ in 0..<16 {
            let temporary = ".\(name).\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
            let tfd = openat(fd, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if tfd >= 0 { return (temporary, tfd) }
            if errno != EEXIST { throw UnsafePathError(path: "\(path)/\(temporary)", problem: .system(errno, "create a temporary file in")) }
        }
        throw UnsafePathError(path: path, problem: .system(EEXIST, "create a temporary file in"))
    }

    /// Opens `name` without following a link; with `O_CREAT` in `flags` it is
    /// created with `mode`. What is opened must be a regular file with one name,
    /// owned by the effective user: anything else is refused and closed.
    public func openFile(_ name: String, flags: Int32, mode: mode_t = 0o600) throws(UnsafePathError) -> Int32 {
        try Self.requireComponent(name, in: path)
        let file = openat(fd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode)
        guard file >= 0 else {
            let problem: UnsafePathError.Problem = errno == ELOOP ? .notRegularFile : .system(errno, "open")
            throw UnsafePathError(path: "\(path)/\(name)", problem: problem)
        }
        var info = stat()
        guard fstat(file, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_nlink == 1, info.st_uid == geteuid() else {
            close(file)
            throw UnsafePathError(path: "\(path)/\(name)", problem: .notRegularFile)
        }
        // O_NONBLOCK was only there so that opening a FIFO cannot hang; files do not need it.
        _ = fcntl(file, F_SETFL, fcntl(file, F_GETFL) & ~O_NONBLOCK)
        return file
    }

    /// The contents of the regular file `name`, or nil when it is absent, a
    /// link or anything but a regular file.
    public func read(_ name: String, limit: Int = 16 << 20) -> [UInt8]? {
        guard let file = try? openFile(name, flags: O_RDONLY) else { return nil }
        defer { close(file) }
        return Self.readAll(file, limit: limit)
    }

    /// Removes `name` (a link is removed, never followed).
    public func remove(_ name: String) {
        guard (try? Self.requireComponent(name, in: path)) != nil else { return }
        unlinkat(fd, name, 0)
    }

    static func readAll(_ file: Int32, limit: Int) -> [UInt8]? {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while result.count < limit {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(file, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { break }
            result += buffer[0..<n]
        }
        return result
    }
}
