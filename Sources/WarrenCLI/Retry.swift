import ArgumentParser
import Foundation
import WarrenCore
import WarrenRuntime

extension Warren {
    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the running supervisor try failed and backing-off tunnels now.",
            discussion: """
                After fixing what a tunnel's error named (the key added to authorized_keys, this \
                machine allowlisted, the host key pinned), there is no need to wait for the next \
                retry or to restart warren: `warren retry` asks the supervisor of the state \
                directory (SIGUSR1, with the tunnel names in <state_dir>/retry-request) to start \
                the named tunnels, or every tunnel in backoff or failed, at once. It then waits up \
                to --wait seconds and prints each tunnel's state. Exit 0 when every one is up, 1 \
                when one is not, 3 when no supervisor runs.
                """)

        @OptionGroup var options: GlobalOptions

        @Argument(help: "Tunnels to retry (default: every tunnel in backoff or failed).")
        var tunnels: [String] = []

        @Option(help: ArgumentHelp("Seconds to wait for the tunnels to come up.", valueName: "SECONDS"))
        var wait: Double = 10

        func run() async throws {
            let config = try options.loadConfig()
            let unknown = tunnels.filter { config.tunnel(named: $0) == nil }
            guard unknown.isEmpty else {
                let names = config.tunnels.map(\.name).joined(separator: ", ")
                throw CommandFailure("warren: no tunnel named \(unknown.map { "\"\(TerminalText.escape($0))\"" }.joined(separator: ", ")) in \(config.file); tunnels: \(names)", exit: 1)
            }
            let presence = SupervisorPresence.look(stateDir: config.stateDir)
            guard let pid = presence.runningPid else {
                throw CommandFailure("warren: no supervisor runs for \(config.stateDir): start it with `warren run` (or `systemctl start warren`)", exit: 3)
            }
            let waiting = Set(presence.liveReport?.tunnels.filter { $0.state == .backoff || $0.state == .failed }.map(\.name) ?? [])
            let asked = tunnels.isEmpty ? waiting.sorted() : tunnels
            do {
                try RetryRequest.send(asked, stateDir: config.stateDir, supervisorPid: pid)
            } catch {
                throw CommandFailure("warren: \(error)", exit: 1)
            }
            print(asked.isEmpty ? "no tunnel is waiting to retry" : "asked supervisor \(pid) to retry: \(asked.joined(separator: ", "))")
            guard !asked.isEmpty else { return }
            let settled = await settle(asked, stateDir: config.stateDir)
            for status in settled {
                let error = status.lastError.map { " (\($0.kind.rawValue): \(TerminalText.escape($0.message)))" } ?? ""
                print("\(status.name): \(status.state.rawValue)\(error)")
            }
            if settled.contains(where: { $0.state != .up }) { throw ExitCode(1) }
        }

        /// The tunnels' statuses once each is up or has failed again, or at --wait.
        private func settle(_ names: [String], stateDir: String) async -> [TunnelStatus] {
            let deadline = ContinuousClock.now + .seconds(wait)
            // Give the supervisor a moment to take the request before reading old states.
            try? await Task.sleep(for: .milliseconds(300))
            while true {
                let report = SupervisorPresence.look(stateDir: stateDir).liveReport
                let statuses = names.compactMap { name in report?.tunnels.first { $0.name == name } }
                let done = statuses.count == names.count && statuses.allSatisfy { [.up, .degraded, .backoff, .failed].contains($0.state) }
                if done || ContinuousClock.now >= deadline { return statuses }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}
