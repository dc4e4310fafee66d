import Foundation
import Testing
import WarrenRuntime
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The rules of `SafeDirectory`, on real directories (as root, with `nobody`
/// as the other user).
@Suite(.serialized) struct SafeDirectoryTests {
    let nobody = getpwnam("nobody")!.pointee.pw_uid

    func scratch() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory(prefix: "sec-sd-")
        chmod(dir.path, 0o755)
        return dir
    }

    func mkdir(_ path: String, _ mode: mode_t, owner: uid_t? = nil) {
        Glibc.mkdir(path, mode)
        chmod(path, mode)
        if let owner { chown(path, owner, gid_t(owner)) }
    }

    func problem(_ path: String) -> UnsafePathError.Problem? {
        do {
            _ = try SafeDirectory.open(path, create: false)
            return nil
        } catch {
            return error.problem
        }
    }

    @Test func anExistingPrivateDirectoryIsUsedAndNotChmodded() throws {
        let dir = try scratch()
        defer { dir.remove() }
        mkdir(dir.appending("state"), 0o750)
        #expect(problem(dir.appending("state")) == nil)
        #expect(Lab.mode(dir.appending("state")) == 0o750)
    }

    @Test func groupWritableOrForeignDirectoriesAreRefused() throws {
        let dir = try scratch()
        defer { dir.remove() }
        mkdir(dir.appending("group"), 0o770)
        mkdir(dir.appending("theirs"), 0o700, owner: nobody)
        #expect(problem(dir.appending("group")) == .writableByOthers(mode: 0o770))
        #expect(problem(dir.appending("theirs")) == .owner(nobody))
        #expect(Lab.mode(dir.appending("group")) == 0o770)
    }

    @Test func aTrustedLinkIsWalkedWithTheSameRules() throws {
        let dir = try scratch()
        defer { dir.remove() }
        mkdir(dir.appending("real"), 0o700)
        symlink(dir.appending("real"), dir.appending("alias"))
        #expect(problem(dir.appending("alias")) == nil, "a link root owns, to a good directory")

        // root's link into a directory nobody controls, where nobody has a link of their own.
        mkdir(dir.appending("shared"), 0o1777)
        mkdir(dir.appending("victim"), 0o700)
        symlink(dir.appending("victim"), dir.appending("shared/hop"))
        lchown(dir.appending("shared/hop"), nobody, gid_t(nobody))
        symlink(dir.appending("shared/hop"), dir.appending("via"))
        #expect(problem(dir.appending("via")) == .symlink(owner: nobody))
    }

    @Test func belowTheDirectoryNoLinkIsFollowed() throws {
        let dir = try scratch()
        defer { dir.remove() }
        mkdir(dir.appending("state"), 0o700)
        mkdir(dir.appending("elsewhere"), 0o700)
        symlink(dir.appending("elsewhere"), dir.appending("state/tunnels"))
        let state = try SafeDirectory.open(dir.appending("state"), create: false)
        #expect(throws: UnsafePathError.self) { try state.subdirectory("tunnels") }
    }

    @Test func onlyAPlainFileOfOurOwnIsOpened() throws {
        let dir = try scratch()
        defer { dir.remove() }
        mkdir(dir.appending("state"), 0o700)
        let state = try SafeDirectory.open(dir.appending("state"), create: false)
        mkfifo(dir.appending("state/fifo"), 0o600)
        link(try dir.write("x", to: "outside"), dir.appending("state/hard"))
        symlink("/dev/zero", dir.appending("state/dev"))
        for name in ["fifo", "hard", "dev"] {
            #expect(throws: UnsafePathError.self, "\(name)") { try state.openFile(name, flags: O_RDONLY) }
        }
        #expect(state.read("fifo") == nil, "a FIFO does not hang the reader")
    }
}
