import Foundation

/// A directory opened without trusting its path twice: every file warren
/// creates or opens under its state directory goes through one of these.
///
/// The path is walked from `/` one component at a time with `openat`, and each
/// directory is checked on the descriptor that was opened (`fstat`), so nothing
/// can be swapped between the check and the use:
/// - every directory is owned by root or the effective user, and is not group-
///   or world-writable (a sticky ancestor such as `/tmp` is allowed; the
///   directory warren writes in is not);
/// - a symbolic link on the way is followed only when root or the effective
///   user owns it (what the kernel's `protected_symlinks` does in sticky
///   directories); inside the directory nothing is followed (`O_NOFOLLOW`);
/// - a missing directory is created with `mode` whatever the umask; one that
///   exists is never chmodded (the error says what to change instead).
public final class SafeDirectory: Sendable {
    /// The absolute path that was opened.
    public let path: String
    let fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// Opens `path` (absolute), creating it and any missing parents with `mode`
    /// when `create` is true.
    /// `finalPrivate: false` lets the last directory be sticky and world-writable,
    /// like its ancestors (used to check the parent of one yet to be made).
    ///
    /// A trusted link on the way is not handed to the kernel: its target is
    /// read and walked with the same rules, so a root-owned link into a
    /// directory another user controls cannot lead on to a link of theirs.
    public static func open(_ path: String, create: Bool = true, mode: mode_t = 0o700, finalPrivate: Bool = true) throws(UnsafePathError) -> SafeDirectory {
        guard path.hasPrefix("/") else { throw UnsafePathError(path: path, problem: .notAbsolute) }
        var pending = Array(path.split(separator: "/").map(String.init).reversed())
        var current = try root()
        var links = 0
        while let name = pending.popLast() {
            if name == "." { continue }
            if name == ".." {
                current = try current.parent()
                continue
            }
            if let target = try current.trustedLink(name) {
                links += 1
                guard links <= 40 else { throw UnsafePathError(path: current.child(name), problem: .system(ELOOP, "open")) }
                pending += target.split(separator: "/").map(String.init).reversed()
                if target.hasPrefix("/") { current = try root() }
                continue
            }
            current = try current.step(into: name, create: create, mode: mode, final: false)
        }
        try current.check(final: finalPrivate)
        return current
    }

    private static func root() throws(UnsafePathError) -> SafeDirectory {
        let root = SafeDirectory(path: "/", fd: Glibc.open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC))
        try root.check(final: false)
        return root
    }

    private func child(_ name: String) -> String { path == "/" ? "/\(name)" : "\(path)/\(name)" }

    private func parent() throws(UnsafePathError) -> SafeDirectory {
        let up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard up >= 0 else { throw UnsafePathError(path: path + "/..", problem: .system(errno, "open")) }
        let opened = SafeDirectory(path: path == "/" ? "/" : (path as NSString).deletingLastPathComponent, fd: up)
        try opened.check(final: false)
        return opened
    }

    /// The target of `name` when it is a link root or this user owns; nil when
    /// it is not a link; an error for anyone else's link.
    private func trustedLink(_ name: String) throws(UnsafePathError) -> String? {
        var info = stat()
        guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_mode & S_IFMT == S_IFLNK else { return nil }
        guard Self.trustedOwner(info.st_uid) else { throw UnsafePathError(path: child(name), problem: .symlink(owner: info.st_uid)) }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(fd, name, &buffer, buffer.count - 1)
        guard n > 0 else { throw UnsafePathError(path: child(name), problem: .system(errno, "read link")) }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// What would stop warren from using `path` as its state directory, or nil.
    /// A missing directory is fine when the part of the path that exists is.
    public static func problem(ofStateDirectory path: String) -> UnsafePathError? {
        var info = stat()
        if lstat(path, &info) == 0 {
            do { _ = try open(path, create: false) } catch { return error }
            return nil
        }
        var existing = (path as NSString).deletingLastPathComponent
        while !existing.isEmpty && existing != "/" && lstat(existing, &info) != 0 {
            existing = (existing as NSString).deletingLastPathComponent
        }
        do { _ = try open(existing.isEmpty ? "/" : existing, create: false, finalPrivate: false) } catch { return error }
        return nil
    }

    /// Opens (or creates) the subdirectory `name`, one path component, with the same checks.
    public func subdirectory(_ name: String, create: Bool = true, mode: mode_t = 0o700) throws(UnsafePathError) -> SafeDirectory {
        try Self.requireComponent(name, in: path)
        return try step(into: name, create: create, mode: mode, final: true)
    }

    private func step(into name: String, create: Bool, mode: mode_t, final: Bool) throws(UnsafePathError) -> SafeDirectory {
        let childPath = child(name)
        if name == ".." || name == "." { throw UnsafePathError(path: childPath, problem: .notAbsolute) }
        var info = stat()
        if fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) != 0 {
            guard errno == ENOENT, create else { throw UnsafePathError(path: childPath, problem: .system(errno, "open")) }
            return try makeChild(name, path: childPath, mode: mode, final: final)
        }
        if info.st_mode & S_IFMT == S_IFLNK { throw UnsafePathError(path: childPath, problem: .symlink(owner: info.st_uid)) }
        let opened = try openChild(name, path: childPath)
        try opened.check(final: final)
        return opened
    }

    private func openChild(_ name: String, path childPath: String) throws(UnsafePathError) -> SafeDirectory {
        let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard child >= 0 else {
            let problem: UnsafePathError.Problem = errno == ENOTDIR ? .notDirectory : errno == ELOOP ? .symlink(owner: 0) : .system(errno, "open")
            throw UnsafePathError(path: childPath, problem: problem)
        }
        return SafeDirectory(path: childPath, fd: child)
    }

    /// mkdirat with the mode, then fchmod on what was opened, only when this
    /// call made it: the umask must not widen it, and a directory that
    /// appeared meanwhile is checked, not chmodded.
    private func makeChild(_ name: String, path childPath: String, mode: mode_t, final: Bool) throws(UnsafePathError) -> SafeDirectory {
        let made = mkdirat(fd, name, mode) == 0
        if !made && errno != EEXIST { throw UnsafePathError(path: childPath, problem: .system(errno, "create directory")) }
        let opened = try openChild(name, path: childPath)
        if made { fchmod(opened.fd, mode) }
        try opened.check(final: final)
        return opened
    }

    /// The owner and mode rules, on the open descriptor.
    private func check(final: Bool) throws(UnsafePathError) {
        var info = stat()
        guard fd >= 0, fstat(fd, &info) == 0 else { throw UnsafePathError(path: path, problem: .system(errno, "open")) }
        guard Self.trustedOwner(info.st_uid) else { throw UnsafePathError(path: path, problem: .owner(info.st_uid)) }
        let writableByOthers = info.st_mode & 0o022 != 0
        let sticky = info.st_mode & mode_t(S_ISVTX) != 0
        if writableByOthers && (final || !sticky) {
            throw UnsafePathError(path: path, problem: .writableByOthers(mode: info.st_mode & 0o7777))
        }
    }

    static func trustedOwner(_ uid: uid_t) -> Bool { uid == 0 || uid == geteuid() }

    static func requireComponent(_ name: String, in directory: String) throws(UnsafePathError) {
        if name.isEmpty || name == "." || name == ".." || name.contains("/") {
            throw UnsafePathError(path: "\(directory)/\(name)", problem: .notAbsolute)
        }
    }
}

/// Why a path under the state directory was refused, with the fix.
public struct UnsafePathError: Error, CustomStringConvertible, Sendable {
    public enum Problem: Sendable, Equatable {
        /// The path is relative, or a name holds `/`, `.` or `..`.
        case notAbsolute
        /// A symbolic link that warren will not follow.
        case symlink(owner: uid_t)
        /// Owned by someone other than root or the effective user.
        case owner(uid_t)
        /// Group- or world-writable: someone else could plant links in it.
        case writableByOthers(mode: mode_t)
        /// Exists but is not a directory (or, for a file, not a regular file).
        case notDirectory
        case notRegularFile
        /// The system refused (errno, what was being done).
        case system(Int32, String)
    }

    public var path: String
    public var problem: Problem

    public var description: String { "\(what); \(fix)" }

    /// What is wrong, naming the path.
    public var what: String {
        switch problem {
        case .notAbsolute: return "\(path): not a plain absolute path"
        case .symlink(let owner): return "\(path) is a symbolic link (owned by \(Self.userName(owner))); warren never follows an untrusted link on the way to or inside its state directory"
        case .owner(let uid):
            let allowed = geteuid() == 0 ? "root" : "\(Self.userName(geteuid())) or root"
            return "\(path) is owned by \(Self.userName(uid)), not by \(allowed); warren does not write where another user could swap files"
        case .writableByOthers(let mode): return "\(path) is group- or world-writable (mode \(String(mode, radix: 8)))"
        case .notDirectory: return "\(path) is not a directory"
        case .notRegularFile: return "\(path) is not a regular file of warren's own (a link, a device, or a file with other names or another owner)"
        case .system(let code, let operation): return "cannot \(operation) \(path): \(String(cString: strerror(code)))"
        }
    }

    /// What to do about it.
    public var fix: String {
        switch problem {
        case .notAbsolute: return "give the full path without . or .. parts"
        case .symlink: return "remove the link (rm \(path)) or give the real path"
        case .owner(let uid):
            let name = Self.userName(uid, bare: true)
            return "run warren as \(name) (sudo -u \(name) warren ...), chown the directory to the user warren runs as, or use another --state-dir"
        case .writableByOthers: return "warren does not chmod a directory it did not create: chmod go-w \(path), or use a private --state-dir (warren creates a missing one 0700)"
        case .notDirectory: return "remove it, or use another --state-dir"
        case .notRegularFile: return "remove it (rm \(path)) and run again; warren recreates its own files"
        case .system: return "check the path and its permissions"
        }
    }

    static func userName(_ uid: uid_t, bare: Bool = false) -> String {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return bare ? "#\(uid)" : "uid \(uid)" }
        return bare ? String(cString: name) : "\(String(cString: name)) (uid \(uid))"
    }
}
