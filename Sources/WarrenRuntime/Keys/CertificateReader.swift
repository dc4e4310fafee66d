import Foundation
import WarrenCore

/// Reads an OpenSSH user certificate with `ssh-keygen -L -f` (doctor, check, metrics).
public enum CertificateReader {
    /// A certificate read from disk, with its expiry as a date.
    public struct Reading: Sendable {
        public var info: CertificateInfo
        /// nil: valid forever.
        public var expiry: Date?
    }

    /// Days before expiry from which `check` warns.
    public static let warningDays = 7.0

    /// The certificate at `path`, or why it cannot be read.
    public static func read(_ path: String, sshBinary: String?) async -> Result<Reading, CertificateError> {
        let keygen = ToolCommand.openSSHTool("ssh-keygen", sshBinary: sshBinary)
        guard let result = try? await ToolCommand.run(keygen, ["-L", "-f", path], timeout: 10), result.succeeded,
            let info = CertificateInfo.parse(result.stdout)
        else {
            return .failure(CertificateError(message: "\(path) is not an OpenSSH certificate that `ssh-keygen -L -f` can read"))
        }
        return .success(Reading(info: info, expiry: info.validTo.flatMap(date)))
    }

    /// ssh-keygen prints validity in local time, without a zone.
    static func date(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone.current
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        return formatter.date(from: text)
    }
}

public struct CertificateError: Error, Sendable {
    public var message: String
}
