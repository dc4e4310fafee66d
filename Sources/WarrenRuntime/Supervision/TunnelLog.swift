import Logging
import WarrenCore

/// How a tunnel's published status differs from the one before.
enum StatusChange: Sendable, Equatable {
    /// The tunnel's first status.
    case first
    /// It moved to another state.
    case transition(from: TunnelState)
    /// Same state; its error, pid or restart count changed.
    case details
}

/// One log line per state change, with the failure kind, ssh's line and the fix.
struct TransitionLog {
    let logger: Logger
    let tunnel: String

    func log(_ status: TunnelStatus, _ change: StatusChange, retryIn: Double?) {
        switch change {
        case .first:
            logger.info("tunnel \(tunnel): \(status.state.rawValue)", metadata: ["tunnel": "\(tunnel)", "state": "\(status.state.rawValue)"])
        case .details:
            return
        case .transition(let previous):
            transition(from: previous, status, retryIn: retryIn)
        }
    }

    private func transition(from previous: TunnelState, _ status: TunnelStatus, retryIn: Double?) {
        var metadata: Logger.Metadata = [
            "tunnel": "\(tunnel)", "state": "\(status.state.rawValue)", "from": "\(previous.rawValue)",
        ]
        if let pid = status.pid { metadata["pid"] = "\(pid)" }
        // A run that ended and starts again at once still says why it ended.
        let ended = previous.hasChild && (status.state == .starting || status.state == .backoff || status.state == .failed)
        if let error = status.lastError, ended || [.backoff, .failed, .degraded].contains(status.state) {
            metadata["kind"] = "\(error.kind.rawValue)"
            metadata["message"] = "\(error.message)"
            metadata["hint"] = "\(error.hint)"
        }
        if let retryIn, status.state == .backoff || status.state == .failed {
            metadata["retry_in"] = "\(String(format: "%.1f", max(0, retryIn)))s"
        }
        let message: Logger.Message = "tunnel \(tunnel): \(previous.rawValue) -> \(status.state.rawValue)"
        switch status.state {
        case .failed: logger.error(message, metadata: metadata)
        case .backoff, .degraded: logger.warning(message, metadata: metadata)
        default: logger.info(message, metadata: metadata)
        }
    }
}

/// Logs a child's output for people, and passes on ssh's own log for the
/// machine to read: what the server sent is data, logged (escaped) and never read.
struct OutputReader: Sendable {
    let tunnel: String
    let logger: Logger

    /// The line for the machine's transcript, if it is ssh's log.
    func read(_ output: SSHOutput) -> String? {
        switch output {
        case .server(let text):
            logger.info("the server says: \(TerminalText.escape(text))", metadata: ["tunnel": "\(tunnel)", "source": "server"])
            return nil
        case .log(let line):
            if StderrClassifier.isDebug(line) {
                logger.trace("ssh: \(line)", metadata: ["tunnel": "\(tunnel)"])
            } else {
                logger.debug("ssh: \(line)", metadata: ["tunnel": "\(tunnel)"])
            }
            if StderrClassifier.isNotice(line) {
                logger.info("\(line)", metadata: ["tunnel": "\(tunnel)"])
            }
            return line
        }
    }
}
