import Foundation
import WarrenCore

/// Step 2 beyond the key file: the key's passphrase, the agent, the
/// certificate and the secret files each login method needs.
extension DoctorSession {
    func checkCredentials() async -> StepOutcome {
        let keys = checkKeyFiles()
        guard case .passed(var evidence) = keys else { return keys }
        let endpoint = tunnel.endpoint
        let login = endpoint.login
        if let failure = checkPassphrase(endpoint, evidence: &evidence) { return failure }
        if login.identityAgent != nil, let failure = await checkAgent(login, evidence: &evidence) { return failure }
        if let certificate = login.certificateFile, let failure = await checkCertificate(certificate, user: endpoint.user, evidence: &evidence) {
            return failure
        }
        for (key, path) in login.secretFiles {
            if let failure = checkSecretFile(path, key: key, evidence: &evidence) { return failure }
        }
        return .passed(evidence: evidence)
    }

    /// An encrypted key with neither a passphrase_file nor an agent cannot be used by ssh.
    private func checkPassphrase(_ endpoint: SSHEndpoint, evidence: inout [String]) -> StepOutcome? {
        guard !endpoint.identityFile.isEmpty,
            let text = try? String(contentsOfFile: endpoint.identityFile, encoding: .utf8),
            PrivateKeyFile.isEncrypted(text) == true
        else { return nil }
        if let passphrase = endpoint.login.passphraseFile {
            evidence.append("\(endpoint.identityFile) is protected by a passphrase, read from \(passphrase) through the askpass helper")
            return nil
        }
        if endpoint.login.identityAgent != nil {
            evidence.append("\(endpoint.identityFile) is protected by a passphrase: the agent must hold it unlocked")
            return nil
        }
        return .failed(
            evidence: evidence + ["\(endpoint.identityFile) is protected by a passphrase and warren has none to give ssh"],
            fix: hint(.keyPassphrase), kind: .keyPassphrase)
    }

    private func agentSocket(_ login: LoginMethod) -> String? {
        login.usesEnvironmentAgent ? ProcessInfo.processInfo.environment["SSH_AUTH_SOCK"] : login.identityAgent
    }

    private func checkAgent(_ login: LoginMethod, evidence: inout [String]) async -> StepOutcome? {
        guard let socket = agentSocket(login), !socket.isEmpty else {
            return .failed(
                evidence: evidence + ["identity_agent = \"SSH_AUTH_SOCK\", but warren's environment has no SSH_AUTH_SOCK"],
                fix: "run warren where SSH_AUTH_SOCK names the agent (e.g. `eval $(ssh-agent)`), or set identity_agent to the socket's path",
                kind: .keyMissing)
        }
        let sshAdd = ToolCommand.openSSHTool("ssh-add", sshBinary: config.sshBinary)
        let result = try? await ToolCommand.run(sshAdd, ["-l"], timeout: 10, environment: ["SSH_AUTH_SOCK": socket])
        switch result?.exitCode {
        case 0?:
            let keys = (result?.stdout ?? "").split(separator: "\n").map { TerminalText.escape(String($0)) }
            evidence.append("agent at \(socket) holds \(keys.count) key\(keys.count == 1 ? "" : "s"): \(keys.joined(separator: "; "))")
            return nil
        case 1?:
            return .failed(
                evidence: evidence + ["the agent at \(socket) holds no keys"],
                fix: "add the key to the agent: SSH_AUTH_SOCK=\(socket) ssh-add PATH_TO_KEY (or plug in the hardware token)", kind: .keyMissing)
        default:
            let words = TerminalText.escape(result?.stderr.split(separator: "\n").first.map(String.init) ?? "ssh-add did not run")
            return .failed(
                evidence: evidence + ["cannot talk to the agent at \(socket): \(words)"],
                fix: "start the agent (ssh-agent -a \(socket)) or fix identity_agent; the socket must be reachable by this user", kind: .keyMissing)
        }
    }

    private func checkCertificate(_ path: String, user: String?, evidence: inout [String]) async -> StepOutcome? {
        switch await CertificateReader.read(path, sshBinary: config.sshBinary) {
        case .failure(let error):
            return .failed(evidence: evidence + [error.message], fix: "point certificate_file at the KEY-cert.pub that `ssh-keygen -s` wrote", kind: .keyMissing)
        case .success(let reading):
            let info = reading.info
            let line = "certificate \(path): \(TerminalText.escape(info.summary))"
            if let expiry = reading.expiry, expiry < Date() {
                return .failed(evidence: evidence + [line + ": EXPIRED"], fix: "have the CA sign the key again (`ssh-keygen -s CA -I ID -n \(user ?? "USER") -V +52w KEY.pub`, or fix certificate_command)", kind: .certificateExpired)
            }
            let login = user ?? ProcessInfo.processInfo.userName
            if !info.principals.isEmpty && !info.principals.contains(login) {
                return .failed(
                    evidence: evidence + [line, "the certificate does not name the login user \(login)"],
                    fix: "have the CA sign it with -n \(login), or set `user` to one of its principals", kind: .authFailed)
            }
            evidence.append(line)
            return nil
        }
    }

    /// A password or passphrase file: present, regular, 0600 (the rule ssh applies to keys).
    private func checkSecretFile(_ path: String, key: String, evidence: inout [String]) -> StepOutcome? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            return .failed(evidence: evidence + ["\(key) \(path): missing or not a regular file"], fix: "write the secret into \(path) and chmod 600 it", kind: .keyMissing)
        }
        if info.st_mode & 0o077 != 0 {
            return .failed(
                evidence: evidence + ["\(key) \(path): mode 0\(String(info.st_mode & 0o777, radix: 8)), readable by group or others"],
                fix: "chmod 600 \(path)", kind: .keyPermissions)
        }
        guard access(path, R_OK) == 0, info.st_size > 0 else {
            return .failed(evidence: evidence + ["\(key) \(path): empty or not readable by uid \(getuid())"], fix: "write the secret into \(path), owned by the user running warren", kind: .keyMissing)
        }
        evidence.append("\(key) \(path): present, mode 0600, handed to ssh through its askpass helper")
        return nil
    }
}
