import Foundation

/// Each ssh child costs the supervisor a few descriptors (its stderr pipe, its
/// log pipe, its pidfd), so a thousand tunnels need about three thousand, while
/// the soft limit a service starts with is often 1024 (systemd's default). The
/// hard limit is the administrator's word; the soft one is ours to raise up to it.
public enum OpenFileLimit {
    /// Raises the soft limit on open files to the hard limit; returns the new soft limit.
    @discardableResult
    public static func raiseToHard() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }
}
