import Foundation

/// Reads a file that another local user must not have written: an included
/// tunnel file, a password or passphrase file. The same rules as the state
/// directory (`SafeDirectory`), for reading:
/// - the file's directory, and every directory on the way to it, is owned by
///   root or the user warren runs as and is not group- or world-writable (a
///   sticky ancestor such as /tmp aside);
/// - the file is a regular file owned that way, not group- or world-writable
///   (a secret: not readable by group or others either), and no larger than
///   the cap, which is checked before reading and again while reading;
/// - a link is followed only when it, and every link it resolves through, is
///   owned that way and stays inside the file's directory: a Kubernetes
///   ConfigMap or Secret volume (`c1.toml -> ..data/c1.toml`,
///   `..data -> ..2026_12_07_xx`, all root's) works; a link to /etc/shadow does
///   not, and nothing of what it points at is read. Every open is O_NOFOLLOW:
///   links are resolved here, one level at a time on open descriptors.
public enum TrustedFile {
    /// What an included tunnel file may weigh: a thousand tunnels fit in a few
    /// hundred kB, and a 256 MB file once took `validate` to 548 MB.
    public static let includeLimit = 1 << 20
    /// A password or passphrase.
    public static let secretLimit = 64 << 10

    /// Why a file was refused, naming it (and the link or directory at fault).
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var reason: String
        public var description: String { "\(path) \(reason)" }
    }

    /// The bytes of `path` (absolute), or why it is refused.
    public static func read(_ path: String, limit: Int, secret: Bool = false) throws(Refusal) -> [UInt8] {
        let fd = try open(path, limit: limit, secret: secret)
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(fd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw Refusal(path: path, reason: "cannot be read: \(String(cString: strerror(errno)))") }
            if n == 0 { return out }
            out += buffer[..<n]
            // It grew after fstat: still never more than the cap in memory.
            if out.count > limit { throw tooLarge(path, limit) }
        }
    }

    /// Whether `path` passes the checks, without reading it: nil, or why not.
    public static func problem(_ path: String, limit: Int = .max, secret: Bool = false) -> Refusal? {
        do {
            close(try open(path, limit: limit, secret: secret))
            return nil
        } catch {
            return error
        }
    }

    /// An open descriptor of the checked file.
    static func open(_ path: String, limit: Int, secret: Bool) throws(Refusal) -> Int32 {
        let parent = (path as NSString).deletingLastPathComponent
        let base = SafeDirectory.self
        let directory: SafeDirectory
        do { directory = try base.open(parent.isEmpty ? "/" : parent, create: false) } catch {
            throw Refusal(path: path, reason: "is in a directory warren does not trust: \(describe(error))")
        }
        var stack = [directory]
        var pending = [(path as NSString).lastPathComponent]
        var links = 0
        while let name = pending.popLast() {
            let current = stack[stack.count - 1]
            let here = current.path == "/" ? "/\(name)" : "\(current.path)/\(name)"
            if name == "." || name.isEmpty { continue }
            if name == ".." {
                guard stack.count > 1 else { throw Refusal(path: path, reason: "resolves outside its directory \(directory.path) (through ..)") }
                stack.removeLast()
                continue
            }
            var info = stat()
            guard fstatat(current.fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw Refusal(path: path, reason: "cannot be opened (\(here): \(String(cString: strerror(errno))))")
            }
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                guard SafeDirectory.trustedOwner(info.st_uid) else {
                    throw Refusal(path: path, reason: "is reached through the link \(here), owned by \(UnsafePathError.userName(info.st_uid)); warren follows only links owned by \(trusted)")
                }
                links += 1
                guard links <= 40 else { throw Refusal(path: path, reason: "has too many levels of links") }
                var target = try readLink(current.fd, name, here: here, path: path)
                if target.hasPrefix("/") {
                    guard target.hasPrefix(directory.path + "/") else {
                        throw Refusal(path: path, reason: "is a link to \(target), outside its directory \(directory.path); warren follows links only within it")
                    }
                    target.removeFirst(directory.path.count + 1)
                    stack = [directory]
                }
                pending += target.split(separator: "/").map(String.init).reversed()
            case S_IFDIR where !pending.isEmpty:
                do { stack.append(try current.subdirectory(name, create: false)) } catch {
                    throw Refusal(path: path, reason: "is reached through a directory warren does not trust: \(describe(error))")
                }
            default:
                guard pending.isEmpty else { throw Refusal(path: path, reason: "cannot be opened (\(here) is not a directory)") }
                return try openFile(current.fd, name, here: here, path: path, limit: limit, secret: secret)
            }
        }
        throw Refusal(path: path, reason: "is not a file")
    }

    private static func openFile(_ at: Int32, _ name: String, here: String, path: String, limit: Int, secret: Bool) throws(Refusal) -> Int32 {
        // O_NONBLOCK: a FIFO put in its place must not hang the reader.
        let fd = openat(at, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw Refusal(path: path, reason: "cannot be opened: \(String(cString: strerror(errno)))") }
        var info = stat()
        let refusal: String? = if fstat(fd, &info) != 0 {
            "cannot be read: \(String(cString: strerror(errno)))"
        } else if info.st_mode & S_IFMT != S_IFREG {
            "is not a regular file"
        } else if !SafeDirectory.trustedOwner(info.st_uid) {
            "is owned by \(UnsafePathError.userName(info.st_uid)), not by \(trusted); another user could change it: chown it"
        } else if info.st_mode & 0o022 != 0 {
            "is group- or world-writable (mode \(String(info.st_mode & 0o7777, radix: 8))); chmod go-w it"
        } else if secret && info.st_mode & 0o077 != 0 {
            "is readable by others (mode \(String(info.st_mode & 0o7777, radix: 8))); chmod 600 it: it holds a secret"
        } else if Int(info.st_size) > limit {
            tooLarge(path, limit).reason
        } else {
            nil
        }
        if let refusal {
            close(fd)
            throw Refusal(path: path, reason: here == path ? refusal : "\(refusal) (the file is \(here))")
        }
        return fd
    }

    private static func readLink(_ at: Int32, _ name: String, here: String, path: String) throws(Refusal) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(at, name, &buffer, buffer.count - 1)
        guard n > 0 else { throw Refusal(path: path, reason: "cannot read the link \(here): \(String(cString: strerror(errno)))") }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func tooLarge(_ path: String, _ limit: Int) -> Refusal {
        Refusal(path: path, reason: "is larger than \(limit >= 1 << 20 ? "\(limit >> 20) MB" : "\(limit >> 10) kB"); it was not read")
    }

    private static var trusted: String {
        geteuid() == 0 ? "root" : "root or \(UnsafePathError.userName(geteuid()))"
    }

    private static func describe(_ error: UnsafePathError) -> String {
        switch error.problem {
        case .owner(let uid): return "\(error.path) is owned by \(UnsafePathError.userName(uid)), not by \(trusted)"
        case .symlink(let owner): return "\(error.path) is a link owned by \(UnsafePathError.userName(owner))"
        default: return error.what
        }
    }
}
