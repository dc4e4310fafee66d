import ArgumentParser
import Foundation
import WarrenCore
import WarrenRuntime

extension Warren {
    struct AuthorizedKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "authorized-key",
            abstract: "Print the least-privilege authorized_keys line for a tunnel's key, and the bastion's setup steps.",
            discussion: """
                The line lets the key do only what the tunnel needs: restrict (no shell, pty, agent \
                or X11 forwarding), port-forwarding limited by permitopen="host:port" (one per \
                local_forward target) and permitlisten (one per remote_forward), from="..." when \
                the config sets allowed_from, and command="/bin/false" for any session. Then come \
                the steps for the bastion's admin (user, ~/.ssh 0700, append, authorized_keys 0600, \
                ownership) and what to allowlist. The line comes from the template \
                authorized_keys.mustache; the public key from the identity file's .pub \
                (or `ssh-keygen -y` when there is none).
                """)

        @OptionGroup var options: GlobalOptions

        @Argument(help: "The tunnel's name, as in [tunnels.NAME].")
        var tunnel: String

        @Flag(help: "Print only the authorized_keys line (for scripts).")
        var lineOnly = false

        func run() async throws {
            let config = try options.loadConfig(requireHostKeys: false)
            let tunnel = try requireTunnel(self.tunnel, in: config)
            let key: PublicKey
            do {
                key = try await PublicKeyFile.read(tunnel.endpoint.identityFile, sshBinary: config.sshBinary)
            } catch {
                throw CommandFailure("warren: \(error)", exit: 1)
            }
            let renderer = try authorizedKeyRenderer(options, config: config)
            let policy = AuthorizedKeyPolicy(tunnel: tunnel)
            let line = renderer.line(policy, key: key)
            // On stderr, so that `--line-only` stays one line for scripts.
            for listener in tunnel.publicListeners where listener.forward.kind == .remote {
                printError("warning: this key's permitlisten lets it listen on \(listener.forward.listen) of the bastion: \(listener)")
            }
            if lineOnly {
                print(line)
                return
            }
            let user = tunnel.endpoint.user ?? ProcessInfo.processInfo.userName
            print(BastionSetup.instructions(tunnel: tunnel, user: user, userFromConfig: tunnel.endpoint.user != nil, line: line, policy: policy), terminator: "")
        }
    }
}

/// A tunnel key's public half.
enum PublicKeyFile {
    /// The `.pub` beside the key, else what `ssh-keygen -y` derives from the private key.
    static func read(_ identityFile: String, sshBinary: String?) async throws -> PublicKey {
        var text = try? String(contentsOfFile: identityFile + ".pub", encoding: .utf8)
        if text == nil {
            let keygen = ToolCommand.openSSHTool("ssh-keygen", sshBinary: sshBinary)
            let result = try await ToolCommand.run(keygen, ["-y", "-f", identityFile], timeout: 20)
            guard result.succeeded else {
                throw CommandFailure("no \(identityFile).pub, and ssh-keygen -y -f \(identityFile) failed: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            text = result.stdout
        }
        switch PublicKey.parse(text ?? "") {
        case .success(let key): return key
        case .failure(let error): throw CommandFailure("\(identityFile).pub \(error.reason)")
        }
    }
}

/// The authorized_keys line renderer from the templates directory; exits 78 when it cannot be read.
func authorizedKeyRenderer(_ options: GlobalOptions, config: WarrenConfig) throws -> AuthorizedKeyRenderer {
    do {
        let directory = try Locations.templatesDirectory(explicit: options.templates, fromConfig: config.templatesDir)
        let path = "\(directory)/\(AuthorizedKeyRenderer.templateName)"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CommandFailure("cannot read template \(path)")
        }
        return try AuthorizedKeyRenderer(template: text) as AuthorizedKeyRenderer
    } catch {
        throw CommandFailure("warren: \(error)", exit: ExitCodes.config)
    }
}
