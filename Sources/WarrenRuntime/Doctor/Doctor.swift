import Foundation
import WarrenCore

/// `warren doctor TUNNEL`: walks the troubleshooting checklist (`DoctorStep`)
/// against the real machine, the real network and the real bastion, and says
/// which step fails and what to do. Steps run one after another in one task;
/// what a step learns (addresses, the open socket, the generated files) is
/// kept here for the steps after it.
public final class Doctor {
    public struct Options: Sendable {
        public var configPath: String?
        public var stateDirOverride: String?
        public var templatesDirectory: String?
        public var tunnel: String

        public init(configPath: String?, stateDirOverride: String?, templatesDirectory: String?, tunnel: String) {
            self.configPath = configPath
            self.stateDirOverride = stateDirOverride
            self.templatesDirectory = templatesDirectory
            self.tunnel = tunnel
        }
    }

    let options: Options
    var configFile = "?"
    /// What step 1 established; the later steps run on it (the plan skips
    /// them when step 1 fails).
    var session: DoctorSession?

    public init(options: Options) {
        self.options = options
    }

    /// Runs every step; `onStep` sees each result as it comes.
    public func run(onStep: (DoctorReport.Step) -> Void = { _ in }) async -> DoctorReport {
        let results = await DoctorPlan.walk(
            run: { step in await self.perform(step) },
            report: { step, outcome in onStep(DoctorReport.Step(step, outcome)) })
        _ = await session?.found.login?.running?.finish()
        return DoctorReport(
            tunnel: options.tunnel, configFile: configFile, results: results,
            manualCommand: session.map { ManualCommand.ssh(for: $0.tunnel, knownHostsFile: $0.files.knownHostsPath(for: $0.tunnel), sshConfig: $0.files.sshConfigPath(for: $0.tunnel)) },
            warrenCommand: session.map { ManualCommand.warren(sshConfig: $0.files.sshConfigPath(for: $0.tunnel), alias: $0.tunnel.alias) })
    }

    func perform(_ step: DoctorStep) async -> StepOutcome {
        if step == .config { return checkConfig() }
        guard let session else {
            // The plan runs no step after a failed step 1; this is only a guard.
            return .failed(evidence: ["the config could not be read"], fix: "see step 1", kind: nil)
        }
        return await session.perform(step)
    }
}

/// Steps 2-10 of `warren doctor`, on what step 1 established (the config,
/// the tunnel, its files and tools): nothing here is optional. What the
/// steps learn and pass on to the steps after them is one value, `found`.
final class DoctorSession {
    let config: WarrenConfig
    let tunnel: TunnelConfig
    let files: TunnelFiles
    let tools: LaunchTools
    /// The first host ssh dials: the first jump hop, else the bastion.
    let firstHop: (alias: String, keyPath: String, endpoint: SSHEndpoint)
    var found = DoctorFindings()

    init(config: WarrenConfig, tunnel: TunnelConfig, files: TunnelFiles) {
        self.config = config
        self.tunnel = tunnel
        self.files = files
        self.tools = LaunchTools(ssh: files.sshProgram)
        self.firstHop = tunnel.endpointsInOrder[0]
    }

    func perform(_ step: DoctorStep) async -> StepOutcome {
        switch step {
        case .config: return .passed(evidence: [])
        case .keyFile: return await checkCredentials()
        case .nameResolves: return await checkName()
        case .tcpConnect: return await checkTCP()
        case .sshBanner: return await checkBanner()
        case .hostKey: return await checkHostKeys()
        case .authentication: return await checkAuthentication()
        case .targets: return await checkTargets()
        case .localPorts: return checkLocalPorts()
        case .endToEnd: return await checkEndToEnd()
        }
    }

}

/// What doctor's steps learn and pass on to the steps after them.
struct DoctorFindings {
    /// Step 3's addresses of the first host.
    var addresses: [NetworkCheck.Address] = []
    /// The one ssh run of steps 4-7.
    var login: Login?
    /// The tunnel with fingerprint pins resolved (by the files' writer).
    var resolvedTunnel: TunnelConfig?
    var filesWritten = false

    struct Login {
        var result: SSHCheck.Result
        var facts: LoginFacts
        /// The server's banner lines, escaped, as evidence.
        var banner: [String]
        /// ssh, still logged in when the result is `.reached`.
        var running: SSHCheck.Running?
        /// The generated files could not be written: no ssh ran.
        var filesProblem: HostKeyResolutionError?
    }
    /// The running supervisor's ssh for this tunnel, when it holds the local ports.
    var runningSSH: Int32?
}

extension Doctor {

    // MARK: - 1. config

    func checkConfig() -> StepOutcome {
        let path: String
        do {
            path = try Locations.configFile(explicit: options.configPath)
        } catch {
            return .failed(evidence: ["\(error)"], fix: "pass --config FILE or set $WARREN_CONFIG", kind: nil)
        }
        configFile = path
        let config: WarrenConfig
        do {
            config = try ConfigFile.load(path: path, stateDirOverride: options.stateDirOverride, requireIdentityFiles: false, requireHostKeys: false)
        } catch {
            return .failed(
                evidence: error.description.split(separator: "\n").map(String.init),
                fix: "correct the config (`warren validate` lists every problem with its key)", kind: nil)
        }
        guard let tunnel = config.tunnel(named: options.tunnel) else {
            let names = config.tunnels.map(\.name).joined(separator: ", ")
            return .failed(
                evidence: ["\(path) has no tunnel named \"\(TerminalText.escape(options.tunnel))\"; tunnels: \(names)"],
                fix: "use one of the names above", kind: nil)
        }
        do {
            let templates = try Locations.templatesDirectory(explicit: options.templatesDirectory, fromConfig: config.templatesDir)
            session = DoctorSession(
                config: config, tunnel: tunnel,
                files: try TunnelFiles(templatesDirectory: templates, stateDir: config.stateDir, configFile: config.file, sshBinary: config.sshBinary))
        } catch {
            return .failed(evidence: ["\(error)"], fix: "install warren's templates (`make install`) or point --templates at them", kind: nil)
        }
        var evidence = ["\(path): tunnel \(tunnel.name), bastion \(Self.describe(tunnel.endpoint))"]
        for (i, hop) in tunnel.jumps.enumerated() { evidence.append("jump hop \(i + 1): \(Self.describe(hop))") }
        evidence.append("forwards: " + tunnel.forwards.map { "\($0.kind.rawValue) \($0)" }.joined(separator: ", "))
        if tunnel.endpointsInOrder.contains(where: { $0.endpoint.hostKeyPolicy == .insecureNoCheck }) {
            evidence.append("warning: host_key_policy = \"insecure-no-check\": host keys are not checked")
        }
        // The state directory is where later steps write: an unsafe one fails here, before anything is written.
        if let problem = SafeDirectory.problem(ofStateDirectory: config.stateDir) {
            return .failed(evidence: evidence + ["state directory: \(problem.what)"], fix: problem.fix, kind: nil)
        }
        evidence.append("state directory \(config.stateDir): owned by root or this user, not writable by others")
        return .passed(evidence: evidence)
    }

    static func describe(_ endpoint: SSHEndpoint) -> String {
        "\(endpoint.user.map { "\($0)@" } ?? "")\(endpoint.host) port \(endpoint.port)"
    }
}

extension DoctorSession {
    // MARK: - 2. key file

    func checkKeyFiles() -> StepOutcome {
        var evidence: [String] = []
        var seen: Set<String> = []
        for (_, keyPath, endpoint) in tunnel.endpointsInOrder where !endpoint.identityFile.isEmpty && seen.insert(endpoint.identityFile).inserted {
            let path = endpoint.identityFile
            var info = stat()
            guard stat(path, &info) == 0 else {
                let isDefault = path.hasPrefix("\(config.stateDir)/keys/")
                let fix = isDefault
                    ? "create it: `warren keygen` (or `warren keygen --tunnel \(tunnel.name)` for a key of this tunnel's own), then give the bastion's admin the line from `warren authorized-key \(tunnel.name)`"
                    : "fix identity_file (\(keyPath).identity_file or [defaults]), or remove it and create warren's own key with `warren keygen`"
                return .failed(evidence: evidence + ["\(path): \(String(cString: strerror(errno)))"], fix: fix, kind: .keyMissing)
            }
            guard info.st_mode & S_IFMT == S_IFREG else {
                return .failed(evidence: evidence + ["\(path) is not a regular file"], fix: "point identity_file at the private key file", kind: .keyMissing)
            }
            guard access(path, R_OK) == 0 else {
                return .failed(
                    evidence: evidence + ["\(path): not readable by uid \(getuid())"],
                    fix: "run warren as the key's owner, or chown the key to the user running warren", kind: .keyPermissions)
            }
            let mode = String(info.st_mode & 0o777, radix: 8)
            // ssh's own rule: a key this user owns must not be open to group or others.
            if info.st_uid == getuid(), info.st_mode & 0o077 != 0 {
                return .failed(
                    evidence: evidence + ["\(path): mode 0\(mode), readable by group or others: ssh refuses it (\"UNPROTECTED PRIVATE KEY FILE\")"],
                    fix: "chmod 600 \(path)", kind: .keyPermissions)
            }
            let head = FileManager.default.contents(atPath: path).map { String(decoding: $0.prefix(64), as: UTF8.self) } ?? ""
            guard head.hasPrefix("-----BEGIN ") && head.contains("PRIVATE KEY") else {
                return .failed(
                    evidence: evidence + ["\(path) does not start like a private key (\"-----BEGIN ... PRIVATE KEY-----\"): a .pub file, or not a key?"],
                    fix: "point identity_file at the private key (the file without .pub), or create one with `warren keygen`", kind: .keyMissing)
            }
            evidence.append("\(path): present, mode 0\(mode), owner uid \(info.st_uid)")
        }
        return .passed(evidence: evidence)
    }

    // MARK: - 9. local ports

    func checkLocalPorts() -> StepOutcome {
        let listeners = (tunnel.localForwards + tunnel.dynamicForwards).map(\.listen)
        guard !listeners.isEmpty else { return .passed(evidence: ["no local listeners (remote forwards only)"]) }
        var evidence: [String] = []
        for listen in listeners {
            switch listen {
            case .unix(let path):
                if FileManager.default.fileExists(atPath: path), let supervisor = SupervisorPresence.look(stateDir: files.stateDir).lockHolder,
                    let ssh = runningTunnelSSH(supervisor: supervisor)
                {
                    found.runningSSH = ssh
                    evidence.append("\(path): held by this tunnel's `warren run` (pid \(supervisor)), which hands its connections to the tunnel's ssh: step 10 probes through it")
                    continue
                }
                if FileManager.default.fileExists(atPath: path) {
                    return .failed(
                        evidence: evidence + ["\(path) already exists: ssh does not replace it, so the forward cannot listen"],
                        fix: "if no program uses it (`ss -xlp | grep \(path)`), remove it: rm \(path)", kind: .localPortInUse)
                }
                evidence.append("\(path): free")
            case .tcp(let host, let port):
                var heldBy: Int32?
                var heldSupervisor: Int32?
                for (address, result) in NetworkCheck.tryBind(host: host, port: port) {
                    switch result {
                    case .free:
                        continue
                    case .failed(let words):
                        return .failed(
                            evidence: evidence + ["cannot listen on \(address) port \(port): \(words)"],
                            fix: "use a bind address of this machine (or none, for loopback) in local_forward; ports below 1024 need root",
                            kind: .localPortInUse)
                    case .inUse:
                        let holder = NetworkCheck.listener(port: port)
                        if let holder, isThisTunnelsSSH(holder.pid) {
                            found.runningSSH = holder.pid
                            heldBy = holder.pid
                            continue
                        }
                        if let holder, let ssh = runningTunnelSSH(supervisor: holder.pid) {
                            found.runningSSH = ssh
                            heldSupervisor = holder.pid
                            continue
                        }
                        let who = holder.map { "by pid \($0.pid): \($0.command)" } ?? "by a process this user cannot see"
                        return .failed(
                            evidence: evidence + ["\(address) port \(port) is already taken \(who)"],
                            fix: hint(.localPortInUse, localPort: port), kind: .localPortInUse)
                    }
                }
                if let heldSupervisor {
                    evidence.append("\(listen): held by this tunnel's `warren run` (pid \(heldSupervisor)), which hands its connections to the tunnel's ssh: step 10 probes through it")
                    continue
                }
                evidence.append(heldBy.map { "\(listen): held by this tunnel's running ssh (pid \($0), started by `warren run`): step 10 probes through it" }
                    ?? "\(listen): free")
            }
        }
        return .passed(evidence: evidence)
    }

    /// Whether `pid` is an ssh running this tunnel's generated config.
    /// When `pid` is the supervisor of this state directory and runs this
    /// tunnel (warren holds the local ports and hands connections to ssh):
    /// the tunnel's ssh pid, or the supervisor's while its ssh is not up.
    func runningTunnelSSH(supervisor pid: Int32) -> Int32? {
        let presence = SupervisorPresence.look(stateDir: files.stateDir)
        guard presence.lockHolder == pid, let status = presence.report?.tunnels.first(where: { $0.name == tunnel.name }) else { return nil }
        return status.pid ?? pid
    }

    func isThisTunnelsSSH(_ pid: Int32) -> Bool {
        guard let arguments = ProcessInfoReader.commandLine(pid), let f = arguments.firstIndex(of: "-F"), f + 1 < arguments.count else { return false }
        return arguments[f + 1] == files.sshConfigPath(for: tunnel)
    }
}
