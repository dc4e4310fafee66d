import Testing
import WarrenTestSupport

/// A monitoring plugin must exit 0-3 whatever it is given.
@Suite struct CheckUsageTests {
    @Test func usageErrorsOfCheckAreUnknown() async throws {
        let result = try await CommandRunner.warren(["check", "--no-such-option"])
        #expect(result.status == 3, "\(result)")
        #expect(result.stderr.contains("Unknown option '--no-such-option'"))
    }

    @Test func otherCommandsKeepTheUsualUsageStatus() async throws {
        let result = try await CommandRunner.warren(["validate", "--no-such-option"])
        #expect(result.status == 64, "\(result)")
    }
}
