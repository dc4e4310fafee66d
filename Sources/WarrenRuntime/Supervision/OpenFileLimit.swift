import Foundation
import Synchronization

/// Each ssh child costs the supervisor a few descriptors (its stderr pipe, its
/// log pipe, its pidfd), so a thousand tunnels need about three thousand, while
/// the soft limit a service starts with is often 1024 (systemd's default). The
/// hard limit is the administrator's word; the soft one is ours to raise up to it.
///
/// The raised limit is warren's alone. ssh holds one descriptor and one channel
/// per connection through a forward, and aborts the whole connection
/// (`channel_new: internal error: channels_alloc 16390 too big`) when a local
/// user opens more than its 16384 channels; with fewer descriptors than that it
/// only logs `accept: Too many open files` and keeps every open connection.
/// So each child gets back the soft limit warren started with, at most
/// `childCap`.
public enum OpenFileLimit {
    /// The most any child gets: a quarter of ssh's channel limit (16384), so
    /// descriptors run out long before channels do, and four times the usual
    /// default of 1024 for a dynamic forward that many clients share.
    public static let childCap: UInt64 = 4096

    /// The soft limit before `raiseToHard`, nil until then.
    private static let startingSoft = Mutex<UInt64?>(nil)

    /// Raises the soft limit on open files to the hard limit; returns the new soft limit.
    @discardableResult
    public static func raiseToHard() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        startingSoft.withLock { if $0 == nil { $0 = UInt64(limit.rlim_cur) } }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }

    /// The soft limit each child is spawned with: the one warren started with
    /// (its current one when it never raised it), at most `childCap`.
    public static var forChildren: UInt64 {
        let starting = startingSoft.withLock { $0 } ?? {
            var limit = rlimit()
            return getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? UInt64(limit.rlim_cur) : childCap
        }()
        return min(starting, childCap)
    }
}
