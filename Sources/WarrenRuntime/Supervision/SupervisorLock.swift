import Foundation

/// One supervisor per state directory: an exclusive flock on
/// `<state_dir>/warren.lock`, which holds the owner's pid. The kernel drops the
/// lock when its holder dies, however it dies.
///
/// The lock is opened through `SafeDirectory`: a link planted at its name is
/// refused, never followed (root's `warren run` must not truncate the file a
/// link points at).
public final class SupervisorLock: Sendable {
    public let path: String
    private let fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    public static func acquire(stateDir: String) throws -> SupervisorLock {
        let directory = try SafeDirectory.open(AtomicFile.absolute(stateDir), create: false)
        let path = "\(directory.path)/warren.lock"
        let fd = try directory.openFile("warren.lock", flags: O_RDWR | O_CREAT, mode: 0o600)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let text = SafeDirectory.readAll(fd, limit: 32).map { String(decoding: $0, as: UTF8.self) }
            close(fd)
            throw LockHeld(path: path, holder: text.flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        }
        ftruncate(fd, 0)
        let text = "\(getpid())\n"
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
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
