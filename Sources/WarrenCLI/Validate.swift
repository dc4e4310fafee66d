import ArgumentParser
import WarrenCore

extension Warren {
    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the config file and report every problem in it.",
            discussion: """
                Each problem names the file and the key (tunnels.warehouse.port) or the \
                line:column of a syntax error, and says what is allowed. Nothing is written. \
                Every forward that listens beyond loopback is named with what it opens. \
                Exits 0 when the config is valid, 78 when it is not.
                """)

        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let config = try options.loadConfig()
            let names = config.tunnels.map { $0.enabled ? $0.name : "\($0.name) (disabled)" }
            print("\(config.file): OK, \(config.tunnels.count) tunnel\(config.tunnels.count == 1 ? "" : "s"): \(names.joined(separator: ", "))")
            for tunnel in config.tunnels where tunnel.endpoint.hostKeyPolicy == .insecureNoCheck || tunnel.jumps.contains(where: { $0.hostKeyPolicy == .insecureNoCheck }) {
                printError("warning: tunnel \(tunnel.name) has host_key_policy = \"insecure-no-check\": anyone on the path can impersonate the bastion")
            }
            for listener in config.tunnels.flatMap(\.publicListeners) {
                printError("warning: \(listener)")
            }
        }
    }
}
