import ArgumentParser
import Foundation
import WarrenCore
import WarrenRuntime

extension Warren {
    struct Keygen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the key pair warren logs in with, and print its public key.",
            discussion: """
                Runs ssh-keygen (no passphrase: warren runs unattended) and writes the private key \
                0600 into a 0700 directory under warren's state directory:
                  <state_dir>/keys/id_ed25519         for every tunnel without identity_file
                  <state_dir>/keys/TUNNEL/id_ed25519  with --tunnel: for that tunnel only
                (id_rsa with --type rsa). An existing key is never overwritten without --force.

                With --tunnel NAME --next: a second key pair, KEY.next, beside the tunnel's current \
                key (its identity_file), and the line the bastion's admin adds beside the current \
                one. Then `warren rotate NAME` proves it logs in and makes it the current key.

                The public key goes to stdout. Give it to the bastion's admin as the line that \
                `warren authorized-key TUNNEL` prints: it limits the key to the tunnel's forwards.
                """)

        @OptionGroup var options: GlobalOptions

        @Option(help: "Key type: ed25519 (the default) or rsa (for bastions that take nothing else).")
        var type: String = KeyType.ed25519.rawValue

        @Option(help: ArgumentHelp("RSA key size.", discussion: "2048-16384; default 3072. Ed25519 keys have no size option.", valueName: "N"))
        var bits: Int?

        @Option(help: ArgumentHelp("Make a key for this tunnel only (default: the key all tunnels share).", valueName: "NAME"))
        var tunnel: String?

        @Flag(help: "Replace an existing key. The old key then stops working wherever it was authorized.")
        var force = false

        @Flag(help: "With --tunnel: make the tunnel's next key (KEY.next) for `warren rotate`.")
        var next = false

        func validate() throws {
            guard let keyType = KeyType(rawValue: type) else {
                throw ValidationError("--type must be one of: \(KeyType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if let reason = keyType.bitsReason(bits) { throw ValidationError(reason) }
            if let tunnel, let reason = ValueRules.tunnelNameReason(tunnel) { throw ValidationError("--tunnel: \(reason)") }
            if next && tunnel == nil { throw ValidationError("--next needs --tunnel NAME: the next key is a tunnel's") }
        }

        func run() async throws {
            let keyType = KeyType(rawValue: type)!
            if next { return try await makeNext(keyType) }
            if let given = options.stateDir, let reason = ValueRules.pathReason(AtomicFile.absolute(given)) {
                // Refused, not silently replaced by the default: the key would land elsewhere.
                throw CommandFailure("warren: --state-dir \"\(TerminalText.escape(given))\" \(reason)", exit: ExitCodes.config)
            }
            let configPath = try? Locations.configFile(explicit: options.config)
            let stateDir = ConfigFile.stateDir(path: configPath, stateDirOverride: options.stateDir)
            let path = ConfigContext.keyPath(stateDir: stateDir, tunnel: tunnel, type: keyType)
            let created: KeyGenerator.Created
            do {
                created = try await KeyGenerator.generate(
                    type: keyType, bits: bits, path: path, comment: KeyGenerator.comment(tunnel: tunnel), force: force)
            } catch {
                throw CommandFailure("warren: \(error)", exit: 1)
            }
            print(created.publicKeyLine)
            printError("\(created.replaced ? "Replaced" : "Created") \(created.privateKey) (private, 0600) and \(created.publicKeyFile).")
            for note in notes(configPath: configPath, stateDir: stateDir, key: path) { printError(note) }
            let name = tunnel ?? "TUNNEL"
            printError("Next: `warren authorized-key \(name)` prints the line for the bastion's ~/.ssh/authorized_keys, limited to the tunnel's forwards.")
        }

        /// `--next`: KEY.next beside the tunnel's key, and the line to authorize it.
        private func makeNext(_ keyType: KeyType) async throws {
            let config = try options.loadConfig(requireHostKeys: false)
            let tunnel = try requireTunnel(self.tunnel!, in: config)
            guard let pairs = KeyPairs(tunnel: tunnel) else {
                throw CommandFailure("warren: tunnel \(tunnel.name) logs in without a key file (an agent or a password): there is no key to rotate", exit: 1)
            }
            let sharers = KeyPairs.sharers(of: tunnel, in: config)
            guard sharers.isEmpty else {
                throw CommandFailure("warren: \(pairs.current) is also the key of \(sharers.joined(separator: ", ")); rotating it would rotate theirs unproven. Give \(tunnel.name) its own key first (`warren keygen --tunnel \(tunnel.name)`, then drop identity_file from it)", exit: 1)
            }
            let created: KeyGenerator.Created
            do {
                created = try await KeyGenerator.generate(
                    type: keyType, bits: bits, path: pairs.next, comment: KeyGenerator.comment(tunnel: tunnel.name) + "-next", force: force,
                    sshBinary: config.sshBinary)
            } catch {
                throw CommandFailure("warren: \(error)", exit: 1)
            }
            let key = try await PublicKeyFile.read(pairs.next, sshBinary: config.sshBinary)
            let line = try authorizedKeyRenderer(options, config: config).line(AuthorizedKeyPolicy(tunnel: tunnel), key: key)
            print(line)
            printError("Created \(created.privateKey) (private, 0600): the next key of tunnel \(tunnel.name), \(key.key.fingerprint ?? "").")
            printError("Next: the bastion's admin adds the line above to ~\(tunnel.endpoint.user ?? "USER")/.ssh/authorized_keys on \(tunnel.endpoint.host), beside the current key's line (keep both); then `warren rotate \(tunnel.name)`.")
        }

        /// Which tunnels use the new key, and which do not although they might expect to.
        private func notes(configPath: String?, stateDir: String, key: String) -> [String] {
            let exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }
            let scope = tunnel.map { "Tunnel \($0) uses it (unless it sets identity_file)." } ?? "Every tunnel without identity_file uses it."
            var notes: [String] = []
            let winner = ConfigContext.defaultIdentityFile(stateDir: stateDir, tunnel: tunnel, exists: exists)
            if winner != key {
                notes.append("Note: \(winner) also exists and is found first, so tunnels use that one; remove it to use the new key.")
            } else {
                notes.append(scope)
            }
            guard let configPath, let config = try? ConfigFile.load(path: configPath, stateDirOverride: options.stateDir, requireHostKeys: false) else {
                return notes
            }
            if let tunnel {
                guard let t = config.tunnel(named: tunnel) else {
                    notes.append("Note: \(config.file) has no tunnel named \(tunnel) yet.")
                    return notes
                }
                if t.endpoint.identityFile != key {
                    notes.append("Note: tunnel \(tunnel) uses \(t.endpoint.identityFile) (identity_file), not this key; remove identity_file to use it.")
                }
            }
            return notes
        }
    }
}
