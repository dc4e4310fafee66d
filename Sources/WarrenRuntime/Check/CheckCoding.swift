import Foundation
import WarrenCore

/// The JSON form of a `warren check` report (`--json`; schema in docs/check-json.md).
public enum CheckCoding {
    public static func encode(_ report: CheckReport) -> String {
        var report = report
        // Milliseconds are precise enough, and keep the number readable.
        report.elapsedSeconds = (report.elapsedSeconds * 1000).rounded() / 1000
        return JSONOutput.encode(report)
    }

    public static func decode(_ data: Data) throws -> CheckReport {
        try JSONDecoder().decode(CheckReport.self, from: data)
    }
}
