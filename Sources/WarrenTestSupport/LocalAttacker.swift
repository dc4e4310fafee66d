import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Another local user attacking a root `warren run` from this machine: the
/// commands run as `nobody` (setpriv), against loopback only.
public enum LocalAttacker {
    /// Prefix that runs a command as nobody, with no supplementary groups.
    public static let asNobody = ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]

    /// Runs `command` as nobody to its end: what an attacker plants or changes.
    public static func run(_ command: [String]) async throws -> CommandResult {
        try await CommandRunner.run(asNobody[0], Array(asNobody.dropFirst()) + command)
    }

    /// What `flood` opens: the 17,000, or as many as this machine's
    /// hard limit on open files lets one process hold.
    public static var floodSize: Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return min(17_000, Int(min(limit.rlim_max, 1 << 20)) - 64)
    }

    /// Starts `count` idle TCP connections from 127.0.0.2 to 127.0.0.1:`port` as nobody, who
    /// raises its own open-file limit to hold them (the hard limit root gives
    /// it: prlimit before setpriv). Connects are non-blocking, so those the
    /// listener never accepts wait in the kernel; every half second it writes
    /// `connected N` (handshakes done) to its log. It holds them until it is
    /// terminated (the lab ends it).
    public static func flood(_ lab: Lab, port: Int, count: Int = floodSize) throws -> SpawnedProcess {
        let script = """
            use Socket; use Fcntl; use Time::HiRes qw(sleep);
            my ($port, $count) = @ARGV; $| = 1;
            my $to = sockaddr_in($port, inet_aton("127.0.0.1"));
            my @held;
            for (1..$count) {
                socket(my $s, PF_INET, SOCK_STREAM, 0) or do { print "socket: $!\\n"; last };
                # From 127.0.0.2: its ports never clash with a listener on 127.0.0.1
                # (other tests' free ports); no TIME_WAIT left behind on close.
                bind($s, sockaddr_in(0, inet_aton("127.0.0.2"))) or do { print "bind: $!\n"; last };
                setsockopt($s, SOL_SOCKET, SO_LINGER, pack("ii", 1, 0));
                fcntl($s, F_SETFL, fcntl($s, F_GETFL, 0) | O_NONBLOCK);
                connect($s, $to);
                push @held, $s;
            }
            print "opened ", scalar(@held), "\\n";
            while (1) { my $n = grep { defined getpeername($_) } @held; print "connected $n\\n"; sleep 0.5 }
            """
        let limit = "--nofile=\(count + 32):\(count + 32)"
        return try lab.spawn("/usr/bin/prlimit", [limit, "--"] + asNobody + ["/usr/bin/perl", "-e", script, "\(port)", "\(count)"], log: "flood.log")
    }

    /// The largest `connected N` the flood has written so far.
    public static func connected(_ flood: SpawnedProcess) -> Int {
        flood.logText().split(separator: "\n").compactMap { line in
            line.hasPrefix("connected ") ? Int(line.dropFirst("connected ".count)) : nil
        }.max() ?? 0
    }
}
