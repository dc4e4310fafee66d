import Foundation

/// Calls `condition` every few milliseconds until it is true (returns true) or
/// `timeout` passes (returns false).
public func waitUntil(timeout: Duration, every pause: Duration = .milliseconds(10), _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while true {
        if condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        Thread.sleep(forTimeInterval: pause.seconds)
    }
}
