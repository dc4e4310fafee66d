import Foundation
import Logging
import WarrenCore

/// Keeps the user certificates of tunnels with `certificate_command` fresh:
/// runs the command at start (when there is no valid certificate), at two
/// thirds of each certificate's lifetime (`CertificateRenewal`), and when
/// asked after a login failed on an expired one. A certificate is checked
/// with `ssh-keygen -L` (user certificate, this key, valid now, the login
/// user among its principals) before it replaces the one in use, and written
/// atomically; when the command fails, the last good one stays.
///
/// One schedule per certificate file: tunnels that share a key and its
/// command share one certificate and one renewal. Driven by the supervisor;
/// no tunnel runner knows of it (the runner's `prepare` awaits `ready`).
actor CertificateRenewer {
    /// What one certificate file is made from.
    struct Subject: Hashable, Sendable {
        var certificateFile: String
        var publicKey: String
        var command: [String]
        var user: String
    }

    /// The certificate in use, as ssh-keygen read it.
    struct Installed: Sendable {
        var info: CertificateInfo
        var validFrom: Double?
        var validTo: Double?
    }

    private struct Schedule {
        var subject: Subject
        var installed: Installed?
        var lastRenewal: RenewalResult?
        var failures = 0
        var nextAt: Double?
        var loop: Task<Void, Never>?
        var inFlight: Task<Void, Never>?
    }

    /// A tunnel cannot log in with its certificate: none valid, and the command did not give one.
    struct Unusable: Error, CustomStringConvertible, Sendable {
        var kind: FailureKind
        var description: String
    }

    private let sshBinary: String?
    private let logger: Logger
    /// Called (off the actor) when a certificate file's state changed: the supervisor re-publishes its tunnels.
    private let changed: @Sendable (String) -> Void
    private var schedules: [String: Schedule] = [:]
    /// `certificate_file`s without a command, as last read, by modification time.
    private var fixed: [String: (stamp: Double, installed: Installed?)] = [:]
    /// The longest a command may run.
    static let commandTimeout = 60.0
    /// The most of its stdout that is read as a certificate.
    static let maxCertificateBytes = 64 * 1024

    init(sshBinary: String?, logger: Logger, changed: @escaping @Sendable (String) -> Void) {
        self.sshBinary = sshBinary
        self.logger = logger
        self.changed = changed
    }

    static func subject(of tunnel: TunnelConfig) -> Subject? {
        let endpoint = tunnel.endpoint
        guard let command = endpoint.login.certificateCommand, let file = endpoint.login.certificateFile, !endpoint.identityFile.isEmpty else { return nil }
        return Subject(certificateFile: file, publicKey: endpoint.identityFile + ".pub", command: command, user: endpoint.user ?? ProcessInfo.processInfo.userName)
    }

    /// The tunnels now run (at start, after a reload): schedules for the
    /// certificate files they use start; those no tunnel uses any more end.
    func configure(_ tunnels: [TunnelConfig]) {
        let subjects = Dictionary(tunnels.compactMap(Self.subject).map { ($0.certificateFile, $0) }, uniquingKeysWith: { first, _ in first })
        for (file, schedule) in schedules where subjects[file] != schedule.subject {
            schedule.loop?.cancel()
            schedules[file] = nil
        }
        for (file, subject) in subjects where schedules[file] == nil {
            schedules[file] = Schedule(subject: subject)
            schedules[file]!.loop = Task { await self.runSchedule(file) }
        }
    }

    func stop() {
        for schedule in schedules.values { schedule.loop?.cancel() }
        schedules.removeAll()
    }

    /// Before every ssh of `tunnel`: a certificate valid now, for the key
    /// ssh offers, is in place (renewed first when it is not). Throws when
    /// there is none and the command could not make one.
    func ready(_ tunnel: TunnelConfig) async throws(Unusable) {
        guard let subject = Self.subject(of: tunnel) else {
            if let file = tunnel.endpoint.login.certificateFile { try await checkFixed(file) }
            return
        }
        let file = subject.certificateFile
        if schedules[file] == nil {
            // Not configured yet (a tunnel started before `configure`): add it, leave the others.
            schedules[file] = Schedule(subject: subject)
            schedules[file]!.loop = Task { await self.runSchedule(file) }
        }
        if schedules[file]?.installed == nil { await adoptExisting(file) }
        if usable(file) { return }
        await renew(file, reason: schedules[file]?.installed == nil ? "no certificate yet" : "the certificate is not valid now")
        guard usable(file) else {
            let why = schedules[file]?.lastRenewal.map { $0.ok ? "" : ": \($0.message)" } ?? ""
            throw Unusable(kind: .certificateExpired, description: "no valid certificate in \(file)\(why)\(validityNote(file))")
        }
    }

    /// A `certificate_file` warren does not renew: an expired one is said
    /// before ssh tries it (a refused login costs the address 5 s of sshd's
    /// PerSourcePenalties). Read again only when the file changed.
    private func checkFixed(_ file: String) async throws(Unusable) {
        var info = stat()
        guard stat(file, &info) == 0 else { return }  // ssh says key_missing
        let stamp = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
        if fixed[file]?.stamp != stamp { fixed[file] = (stamp, await read(file)) }
        guard let installed = fixed[file]?.installed else { return }
        switch CertificateRenewal.validity(from: installed.validFrom, to: installed.validTo, at: Date().timeIntervalSince1970) {
        case .valid: return
        case .notYetValid, .expired:
            throw Unusable(kind: .certificateExpired, description: "the certificate \(file) is not valid now (\(TerminalText.escape(installed.info.summary)))")
        }
    }

    /// After a refused login: whether `tunnel`'s certificate was outside its
    /// validity at `now` (ssh cannot say so; see `FailureKind.certificateExpired`).
    /// With a command the certificate is renewed at once.
    func explainsRefusal(_ tunnel: TunnelConfig, now: Double) -> Bool {
        guard let file = tunnel.endpoint.login.certificateFile,
            let installed = schedules[file]?.installed ?? fixed[file]?.installed,
            CertificateRenewal.validity(from: installed.validFrom, to: installed.validTo, at: now) != .valid
        else { return false }
        if schedules[file] != nil {
            Task { await self.renew(file, reason: "a login was refused with the expired certificate") }
        }
        return true
    }

    /// The key of `tunnel` changed (`warren rotate`): its certificate is for the old one.
    func keyChanged(_ tunnel: TunnelConfig) {
        guard let subject = Self.subject(of: tunnel) else { return }
        Task { await self.renew(subject.certificateFile, reason: "the key was rotated") }
    }

    /// `credentials.certificate` in status.json.
    func status(of tunnel: TunnelConfig) -> CertificateStatus? {
        guard let subject = Self.subject(of: tunnel), let schedule = schedules[subject.certificateFile] else { return nil }
        let text = { (seconds: Double?) in seconds.map { Date(timeIntervalSince1970: $0).formatted(.iso8601) } }
        return CertificateStatus(
            file: subject.certificateFile, validAfter: text(schedule.installed?.validFrom), validBefore: text(schedule.installed?.validTo),
            validBeforeUnix: schedule.installed?.validTo, principals: schedule.installed?.info.principals,
            nextRenewal: text(schedule.nextAt), lastRenewal: schedule.lastRenewal)
    }

    // MARK: - The schedule

    private func runSchedule(_ file: String) async {
        if schedules[file]?.installed == nil { await adoptExisting(file) }
        if !usable(file) { await renew(file, reason: "no valid certificate at start") }
        while !Task.isCancelled, let next = schedules[file]?.nextAt {
            let wait = next - Date().timeIntervalSince1970
            if wait > 0 { try? await Task.sleep(for: .seconds(wait)) }
            guard !Task.isCancelled, schedules[file] != nil else { return }
            // Someone renewed meanwhile (a refused login): sleep to the new time.
            if let now = schedules[file]?.nextAt, now > Date().timeIntervalSince1970 + 0.5 { continue }
            await renew(file, reason: "two thirds of its lifetime have passed")
        }
    }

    /// A certificate left on disk by an earlier run, when it fits the key.
    private func adoptExisting(_ file: String) async {
        guard let subject = schedules[file]?.subject, FileManager.default.fileExists(atPath: file),
            let installed = await read(file), rejection(installed, subject, ignoringTime: true) == nil
        else { return }
        schedules[file]?.installed = installed
        schedules[file]?.nextAt = CertificateRenewal.renewalTime(validFrom: installed.validFrom, validTo: installed.validTo, obtained: Date().timeIntervalSince1970)
    }

    private func usable(_ file: String) -> Bool {
        guard let schedule = schedules[file], let installed = schedule.installed else { return false }
        return rejection(installed, schedule.subject, ignoringTime: false) == nil
    }

    /// Runs the command once for `file` (a renewal already running is joined).
    private func renew(_ file: String, reason: String) async {
        if let running = schedules[file]?.inFlight { return await running.value }
        guard schedules[file] != nil else { return }
        let task = Task { await self.renewOnce(file, reason: reason) }
        schedules[file]?.inFlight = task
        await task.value
        schedules[file]?.inFlight = nil
    }

    private func renewOnce(_ file: String, reason: String) async {
        guard let subject = schedules[file]?.subject else { return }
        let outcome = await issue(subject)
        let now = Date().timeIntervalSince1970
        guard schedules[file] != nil else { return }
        let at = Date(timeIntervalSince1970: now).formatted(.iso8601)
        switch outcome {
        case .success(let installed):
            schedules[file]?.installed = installed
            schedules[file]?.failures = 0
            schedules[file]?.nextAt = CertificateRenewal.renewalTime(validFrom: installed.validFrom, validTo: installed.validTo, obtained: now)
            let summary = TerminalText.escape(installed.info.summary)
            schedules[file]?.lastRenewal = RenewalResult(at: at, atUnix: now, ok: true, message: "renewed: \(summary)")
            logger.info("certificate renewed (\(reason)): \(summary)", metadata: ["certificate": "\(file)"])
        case .failure(let failure):
            let message = failure.message
            let failures = (schedules[file]?.failures ?? 0) + 1
            schedules[file]?.failures = failures
            let validTo = schedules[file]?.installed?.validTo
            schedules[file]?.nextAt = CertificateRenewal.retryTime(failures: failures, now: now, validTo: validTo)
            let kept = schedules[file]?.installed == nil ? "there is no earlier certificate" : "keeping the last good certificate\(validityNote(file))"
            schedules[file]?.lastRenewal = RenewalResult(at: at, atUnix: now, ok: false, message: "\(message); \(kept)")
            logger.error("certificate renewal failed (\(reason)): \(message); \(kept)", metadata: ["certificate": "\(file)"])
        }
        changed(file)
    }

    private func validityNote(_ file: String) -> String {
        guard let installed = schedules[file]?.installed else { return "" }
        return " (\(TerminalText.escape(installed.info.summary)))"
    }

    // MARK: - One run of the command

    /// Runs the command, checks what it printed and installs it; or says why not.
    private func issue(_ subject: Subject) async -> Result<Installed, RenewalFailure> {
        let argv = LoginMethod.certificateArgv(subject.command, publicKey: subject.publicKey)
        let shown = argv.map { TerminalText.escape($0) }.joined(separator: " ")
        guard let program = argv.first.flatMap({ $0.contains("/") ? $0 : ToolCommand.which($0) }) else {
            return .failure(RenewalFailure("certificate_command: \(TerminalText.escape(argv.first ?? "")) is not on PATH"))
        }
        let result: ToolResult
        do {
            result = try await ToolCommand.run(program, Array(argv.dropFirst()), timeout: Self.commandTimeout)
        } catch {
            return .failure(RenewalFailure("cannot run \(shown): \(error)"))
        }
        let said = TerminalText.escape(String(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).prefix(2000)))
        guard result.succeeded else {
            let how = result.timedOut ? "ran past \(Int(Self.commandTimeout)) s" : "exited with status \(result.exitCode.map(String.init) ?? "?")"
            return .failure(RenewalFailure("certificate_command \(shown) \(how)\(said.isEmpty ? "" : ": \(said)")"))
        }
        let text = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty, text.utf8.count <= Self.maxCertificateBytes, !text.contains("\n") else {
            return .failure(RenewalFailure("certificate_command \(shown) printed \(text.isEmpty ? "nothing" : "more than one line") on stdout; it must print the certificate (`ssh-...-cert-v01@openssh.com AAAA...`)"))
        }
        let temporary = "\((subject.certificateFile as NSString).deletingLastPathComponent)/.\((subject.certificateFile as NSString).lastPathComponent).new-\(getpid())"
        defer { unlink(temporary) }
        do {
            try AtomicFile.write(text + "\n", to: temporary, mode: 0o644)
        } catch {
            return .failure(RenewalFailure("cannot write \(temporary): \(error)"))
        }
        guard let installed = await read(temporary) else {
            return .failure(RenewalFailure("certificate_command \(shown) printed something `ssh-keygen -L` does not read as a certificate"))
        }
        if let why = rejection(installed, subject, ignoringTime: false) {
            return .failure(RenewalFailure("the certificate certificate_command gave is not used: \(why)"))
        }
        guard rename(temporary, subject.certificateFile) == 0 else {
            return .failure(RenewalFailure("cannot move the certificate to \(subject.certificateFile): \(String(cString: strerror(errno)))"))
        }
        return .success(installed)
    }

    private func read(_ path: String) async -> Installed? {
        guard case .success(let reading) = await CertificateReader.read(path, sshBinary: sshBinary) else { return nil }
        let from = reading.info.validFrom.flatMap(CertificateReader.date)?.timeIntervalSince1970
        return Installed(info: reading.info, validFrom: from, validTo: reading.expiry?.timeIntervalSince1970)
    }

    private func rejection(_ installed: Installed, _ subject: Subject, ignoringTime: Bool) -> String? {
        let fingerprint = (try? String(contentsOfFile: subject.publicKey, encoding: .utf8))
            .flatMap { try? PublicKey.parse($0.trimmingCharacters(in: .whitespacesAndNewlines)).get() }?.key.fingerprint
        let now = ignoringTime ? (installed.validFrom ?? 0) : Date().timeIntervalSince1970
        return CertificateRenewal.rejection(
            installed.info, validFrom: installed.validFrom, validTo: installed.validTo, user: subject.user, keyFingerprint: fingerprint, now: now)
    }
}

/// Why one run of `certificate_command` gave no certificate warren uses.
struct RenewalFailure: Error, Sendable {
    var message: String
    init(_ message: String) { self.message = message }
}
