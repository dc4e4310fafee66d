import ArgumentParser

/// A command's failure, worded for the user: the one error type the commands
/// throw once they know what went wrong. `Warren.runAsMain` catches it at the
/// top, prints the message (escaped) and the fix, and exits with its code.
struct CommandFailure: Error, CustomStringConvertible {
    /// The exit status: 78 for an invalid config (sysexits EX_CONFIG), 3 for
    /// "no status" and check's UNKNOWN, 1 otherwise.
    var code: Int32
    var message: String
    /// What to do about it, when the message does not already say.
    var hint: String?

    init(_ message: String, exit code: Int32 = 1, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    var description: String { message }

    /// Prints it on stderr and gives the exit status.
    func report() -> ExitCode {
        printError(message + (hint.map { "\n  fix: \($0)" } ?? ""))
        return ExitCode(code)
    }
}
