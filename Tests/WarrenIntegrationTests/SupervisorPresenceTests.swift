import Foundation
import Testing
@testable import WarrenRuntime
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// How `warren check` tells that a supervisor runs: the holder of warren.lock,
/// read from /proc/locks without touching the lock.
@Suite(.serialized)
struct SupervisorPresenceTests {
    @Test func theLockHolderIsFoundEvenBehindManyOtherLocks() throws {
        try withTemporaryDirectoryBlocking { dir in
            #expect(SupervisorPresence.look(stateDir: dir.path).runningPid == nil, "no lock file, no supervisor")
            let lock = open(dir.appending("warren.lock"), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            defer { close(lock) }
            #expect(SupervisorPresence.look(stateDir: dir.path).runningPid == nil, "the file exists but nobody holds it")
            try #require(flock(lock, LOCK_EX | LOCK_NB) == 0)
            // Locks taken later are listed first in /proc/locks: push warren.lock's
            // line well past the 4 KiB that a naive read of a procfs file returns.
            var others: [Int32] = []
            defer { others.forEach { close($0) } }
            for index in 0..<120 {
                let fd = open(dir.appending("other-\(index)"), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
                try #require(fd >= 0 && flock(fd, LOCK_EX) == 0)
                others.append(fd)
            }
            let presence = SupervisorPresence.look(stateDir: dir.path)
            #expect(presence.lockKnown)
            #expect(presence.lockHolder == getpid())
            #expect(presence.liveReport == nil, "no status.json yet")
            flock(lock, LOCK_UN)
            #expect(SupervisorPresence.look(stateDir: dir.path).lockHolder == nil)
        }
    }

    @Test func blockedWaitersAndOtherFilesAreNotHolders() {
        let locks = """
            1: FLOCK  ADVISORY  WRITE 700 fe:00:99 0 EOF
            1: -> FLOCK  ADVISORY  WRITE 701 fe:00:42 0 EOF
            2: POSIX  ADVISORY  WRITE 702 fe:00:42 0 EOF
            3: FLOCK  ADVISORY  WRITE 703 fe:01:42 0 EOF
            4: FLOCK  ADVISORY  WRITE 704 fe:00:42 0 EOF
            """
        #expect(SupervisorPresence.holder(inLocks: locks, major: 0xfe, minor: 0, inode: 42) == 704)
        #expect(SupervisorPresence.holder(inLocks: locks, major: 0xfe, minor: 0, inode: 43) == nil)
    }
}

/// `withTemporaryDirectory` for synchronous bodies.
func withTemporaryDirectoryBlocking<T>(prefix: String = "w-", _ body: (TemporaryDirectory) throws -> T) throws -> T {
    let directory = try TemporaryDirectory(prefix: prefix)
    defer { directory.remove() }
    return try body(directory)
}
