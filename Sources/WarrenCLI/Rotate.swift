import ArgumentParser
import Foundation
import WarrenCore
import WarrenRuntime

extension Warren {
    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a tunnel's next key (warren keygen --tunnel NAME --next) its current key, once it is proven to log in.",
            discussion: """
                First one real login with the next key (it counts in this machine's penalty budget: \
                reserved before, refunded when it works). If the bastion refuses it, nothing changes \
                and the line to add is printed. Otherwise KEY.next becomes KEY and the old key is kept \
                as KEY.previous. A running supervisor keeps its connection (ssh logged in with the old \
                key) and uses the new key from its next login; --now reconnects at once, as a \
                reload does for a changed tunnel. \
                Once the admin removed the old key's line: `warren rotate NAME --forget-previous`.
                """)

        @OptionGroup var options: GlobalOptions

        @Argument(help: "The tunnel's name, as in [tunnels.NAME].")
        var tunnel: String

        @Flag(help: "Reconnect the running tunnel with the new key now.")
        var now = false

        @Flag(help: "Delete the previous key (KEY.previous), after the admin removed its line. Makes no login.")
        var forgetPrevious = false

        @Option(help: ArgumentHelp("Seconds the proving login may take.", valueName: "SECONDS"))
        var timeout: Double = 20

        func validate() throws {
            if now && forgetPrevious { throw ValidationError("--forget-previous rotates nothing: give it alone") }
        }

        func run() async throws {
            let config = try options.loadConfig()
            let tunnel = try requireTunnel(self.tunnel, in: config)
            guard let pairs = KeyPairs(tunnel: tunnel) else {
                throw CommandFailure("warren: tunnel \(tunnel.name) logs in without a key file (an agent or a password): there is no key to rotate", exit: 1)
            }
            if forgetPrevious {
                let removed: [String]
                do { removed = try pairs.forgetPrevious() } catch { throw CommandFailure("warren: \(error)", exit: 1) }
                print(removed.isEmpty ? "\(tunnel.name): no previous key to forget (\(pairs.previous))" : "\(tunnel.name): deleted \(removed.joined(separator: " and "))")
                return
            }
            guard KeyPairs.exists(pairs.next) else {
                throw CommandFailure("warren: \(tunnel.name) has no next key (\(pairs.next)): make one with `warren keygen --tunnel \(tunnel.name) --next` and have the admin add its line", exit: 1)
            }
            let sharers = KeyPairs.sharers(of: tunnel, in: config)
            guard sharers.isEmpty else {
                throw CommandFailure("warren: \(pairs.current) is also the key of \(sharers.joined(separator: ", ")): rotating it would rotate theirs unproven", exit: 1)
            }
            let fingerprint = KeyPairs.fingerprint(of: pairs.next + ".pub") ?? pairs.next
            let files = try options.tunnelFiles(for: config)
            let answer = await pairs.proveNext(tunnel, files: files, sshBinary: config.sshBinary, stateDir: config.stateDir, timeout: timeout)
            switch answer {
            case .reachable, .targetFailed:
                break
            case .failed(let kind, let message) where kind.isLoginRefusal:
                let key = try await PublicKeyFile.read(pairs.next, sshBinary: config.sshBinary)
                let line = try authorizedKeyRenderer(options, config: config).line(AuthorizedKeyPolicy(tunnel: tunnel), key: key)
                let user = tunnel.endpoint.user ?? ProcessInfo.processInfo.userName
                throw CommandFailure("""
                    warren: \(tunnel.name): the bastion refused the next key \(fingerprint) (\(kind.rawValue): \(TerminalText.escape(message))); nothing changed, the tunnel keeps \(pairs.current).
                      fix: add this line to ~\(user)/.ssh/authorized_keys on \(tunnel.endpoint.host), beside the current key's, then run `warren rotate \(tunnel.name)` again:
                    \(line)
                    """, exit: 1)
            case .failed(let kind, let message):
                throw CommandFailure("warren: \(tunnel.name): the next key could not be tried (\(kind.rawValue): \(TerminalText.escape(message))); nothing changed\n  fix: \(kind.hint(in: HintContext(tunnel: tunnel, message: message, defaultUser: ProcessInfo.processInfo.userName)))", exit: 1)
            case .noAnswer(let message):
                throw CommandFailure("warren: \(tunnel.name): the next key could not be tried: \(TerminalText.escape(message)); nothing changed", exit: 1)
            }
            do {
                try pairs.promoteNext()
            } catch {
                throw CommandFailure("warren: \(tunnel.name): the next key logs in, but \(error); fix that and run `warren rotate \(tunnel.name)` again", exit: 1)
            }
            print("\(tunnel.name): the next key \(fingerprint) logged in and is now the current key (\(pairs.current)); the old one is kept as \(pairs.previous)")
            if let pid = SupervisorPresence.look(stateDir: config.stateDir).runningPid {
                do {
                    try RetryRequest.send([tunnel.name], stateDir: config.stateDir, supervisorPid: pid, action: now ? .reconnect : .rotated)
                    print(now ? "asked supervisor \(pid) to reconnect \(tunnel.name) with it now" : "supervisor \(pid): the running connection keeps the old key; the next login uses the new one (`--now` reconnects at once)")
                } catch {
                    printError("warning: could not tell supervisor \(pid): \(error); its next login uses the new key all the same")
                }
            }
            printError("Next: once the bastion's admin removed the old key's line, `warren rotate \(tunnel.name) --forget-previous`.")
        }
    }
}
