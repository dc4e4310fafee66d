#if canImport(Glibc)
import Glibc
#endif

/// Why a fixture could not do what a test asked of it.
///
/// The message is meant to be read in a failed test's output, so it says what
/// went wrong and, where it can, includes the log that shows why.
public struct FixtureError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, in words.
    public let message: String
    /// The errno behind it, when a system call failed.
    public let errno: Int32?

    public init(_ message: String, errno: Int32? = nil) {
        self.message = message
        self.errno = errno
    }

    public var description: String {
        guard let errno else { return message }
        return "\(message): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}
