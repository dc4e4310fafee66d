import Foundation

/// The FIFO that ssh writes its own log to (`ssh -E PATH`), so that ssh's
/// words are read apart from the server's: a pre-auth banner is printed by ssh
/// on stderr, whatever it imitates, and never reaches this pipe. Jump hops'
/// ssh log here too (the generated ProxyCommand passes `-E "$WARREN_SSH_LOG"`).
///
/// warren opens the FIFO read-write before ssh starts, so ssh's open never
/// blocks and no writer coming and going makes it look ended; the end of the
/// log is the end of the run (the reactor reads what is left once ssh has
/// ended). Each ssh log line is one write of under 4 kB, so lines of several
/// writers never mix. `ChildReactor` reads `fd`; this type only makes the
/// pipe and removes it.
final class SSHLogPipe {
    let path: String
    let fd: Int32

    /// Makes the FIFO at `path` (replacing what is there), open for reading.
    init(path: String) throws {
        unlink(path)
        guard mkfifo(path, 0o600) == 0 else { throw LogPipeError(path: path, errno: errno) }
        let fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            let code = errno
            unlink(path)
            throw LogPipeError(path: path, errno: code)
        }
        self.path = path
        self.fd = fd
    }

    /// Closes and removes the pipe; call once the run is over.
    func remove() {
        close(fd)
        unlink(path)
    }
}

public struct LogPipeError: Error, CustomStringConvertible {
    public var path: String
    public var errno: Int32
    public var description: String { "cannot make ssh's log pipe \(path): \(String(cString: strerror(errno)))" }
}
