import Foundation

/// One supervisor per state directory: an exclusive flock on
/// `<state_dir>/warren.lock`, which holds the owner's pid. The kernel drops the
/// lock when its holder dies, however it dies.
public final class SupervisorLock: Sendable {
    public let path: String
    private let fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    public static func acquire(stateDir: String) throws -> SupervisorLock {
        let path = "\(stateDir)/warren.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileError(path: path, operation: "open", code: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw LockHeld(path: path, holder: holder.flatMap { Int32($0) })
        }
        ftruncate(fd, 0)
        let text = "\(getpid())\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
        return SupervisorLock(path: path, fd: fd)
    }

    deinit {
        close(fd)
    }
}

public struct LockHeld: Error, CustomStringConvertible {
    public var path: String
    public var holder: Int32?
    public var description: String {
        let who = holder.map { "warren (pid \($0))" } ?? "another warren"
        return "\(who) is already supervising this state directory (it holds \(path)); stop it first, or use another --state-dir"
    }
}
