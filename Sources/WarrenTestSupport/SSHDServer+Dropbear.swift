import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Dropbear as the bastion (`Options(program: .dropbear, sshdPath: "/usr/sbin/dropbear")`).
///
/// Dropbear has no AuthorizedKeysFile setting: it reads the login user's
/// `~/.ssh/authorized_keys`. The tests log in as whoever runs them (root), and
/// the machine's own /root/.ssh must not be touched, so Dropbear runs in a
/// mount namespace of its own (`unshare --mount`, private propagation) in
/// which the server's directory is bind-mounted over the user's home. Nothing
/// outside that process and its children sees the mount, it needs no user
/// account and no file outside the server's directory, and it disappears with
/// the process, even when a test dies by SIGKILL. unshare and sh exec, so the
/// pid the fixture spawns is dropbear's own.
extension SSHDServer {
    /// The user's home inside Dropbear's namespace: the server's directory
    /// (root-owned 0700 from mkdtemp) with `.ssh` 0700 in it, which Dropbear's
    /// own mode checks accept.
    static func makeDropbearHome(_ directory: TemporaryDirectory) throws {
        let ssh = directory.appending(".ssh")
        guard mkdir(ssh, 0o700) == 0 || errno == EEXIST else { throw FixtureError("mkdir \(ssh)", errno: errno) }
    }

    /// Starts `dropbear -F -E -s -p 127.0.0.1:PORT -r KEY -P PIDFILE` with the
    /// server's directory as the home of the user who runs the tests, and waits
    /// until it listens (its `Not backgrounding` line, and the port in
    /// /proc/net/tcp: never a connect).
    static func launchDropbear(options: Options, directory: TemporaryDirectory, port: Int) throws -> SpawnedProcess {
        guard geteuid() == 0 else { throw FixtureError("a Dropbear bastion needs root (it runs in a mount namespace of its own)") }
        guard let home = getpwuid(geteuid()).map({ String(cString: $0.pointee.pw_dir) }), home.hasPrefix("/") else {
            throw FixtureError("no home directory for uid \(geteuid())")
        }
        let log = directory.appending("sshd.log")
        let offset = (try? FileManager.default.attributesOfItem(atPath: log)[.size] as? Int) ?? 0
        // $0 the server's directory, $1 the home it covers, $2 dropbear, then its arguments.
        let script = #"mount --bind "$0" "$1" && shift && exec "$@""#
        let listener = try SpawnedProcess.spawn(
            "/usr/bin/unshare",
            ["--mount", "--propagation", "private", "/bin/sh", "-c", script, directory.path, home,
             options.sshdPath, "-F", "-E", "-s", "-p", "127.0.0.1:\(port)",
             "-r", directory.appending(hostKeyName), "-P", directory.appending("dropbear.pid")],
            log: log)
        var output = ""
        let listening = waitUntil(timeout: options.readyTimeout, every: .milliseconds(2)) {
            output = String(listener.logText().utf8.dropFirst(offset)) ?? ""
            return (output.contains("Not backgrounding") && FreePort.isListening(port)) || !listener.isAlive
        } && listener.isAlive
        if listening { return listener }
        let how = listener.terminate(grace: .seconds(1))
        if output.contains("Address already in use") { throw PortTaken() }
        throw FixtureError("dropbear did not listen on 127.0.0.1:\(port) within \(options.readyTimeout) (\(how)); its log:\n\(output)")
    }
}

/// Host keys made by Dropbear's own `dropbearkey` (it does not read OpenSSH's format).
public enum DropbearKey {
    public static let path = "/usr/bin/dropbearkey"

    /// Creates an ed25519 host key at `file` (replacing one that is there),
    /// writes its public line to `<file>.pub` and returns it
    /// (`ssh-ed25519 AAAA... comment`).
    @discardableResult
    public static func generate(at file: String) throws -> String {
        guard access(path, X_OK) == 0 else { throw FixtureError("Dropbear is not installed: apt-get install -y dropbear-bin (\(path) is missing)") }
        unlink(file)
        let log = file + ".keygen.log"
        defer { unlink(log) }
        let made = try SpawnedProcess.run(path, ["-t", "ed25519", "-f", file], log: log)
        guard made.status == 0 else { throw FixtureError("dropbearkey -t ed25519 -f \(file) exited \(made.status): \(made.output)") }
        // -y prints "Public key portion is:", the line, and "Fingerprint: ...".
        let shown = try SpawnedProcess.run(path, ["-y", "-f", file], log: log)
        guard shown.status == 0, let line = shown.output.split(separator: "\n").first(where: { $0.hasPrefix("ssh-") }) else {
            throw FixtureError("dropbearkey -y -f \(file) exited \(shown.status) without a public key line: \(shown.output)")
        }
        let text = String(line).trimmingCharacters(in: .whitespacesAndNewlines)
        try Data((text + "\n").utf8).write(to: URL(fileURLWithPath: file + ".pub"))
        return text
    }
}
