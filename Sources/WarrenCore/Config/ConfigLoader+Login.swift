/// The login keys: `identity_agent`, `certificate_file`, `password_file`, `passphrase_file`.
extension ConfigLoader {
    func readLogin(_ r: TableReader) -> LoginMethod {
        var login = LoginMethod()
        if let agent = r.string("identity_agent") {
            login.identityAgent = agent == LoginMethod.environmentAgent
                ? agent : checkedPath(agent, at: r.path("identity_agent"), r.log)
        }
        if case .string? = r.table["certificate_command"] {
            r.log.add(r.path("certificate_command"), "must be a list: the program and each argument as its own string (no shell runs it), e.g. [\"vault\", \"write\", \"-field=signed_key\", \"ssh/sign/ROLE\", \"public_key=@{public_key}\"]")
        } else if let entries = r.strings("certificate_command") {
            let command = entries.map(\.value)
            if let reason = LoginMethod.certificateCommandReason(command) {
                r.log.add(r.path("certificate_command"), reason)
            } else {
                login.certificateCommand = command
            }
        }
        if let file = r.string("certificate_file"), let path = checkedPath(file, at: r.path("certificate_file"), r.log) {
            // With a command warren writes the certificate itself: it need not exist yet.
            if r.table["certificate_command"] == nil && context.requireIdentityFiles && !context.isReadableFile(path) {
                r.log.add(r.path("certificate_file"), "certificate \(path) does not exist or is not readable; sign the public key with `ssh-keygen -s CA_KEY -I ID -n USER KEY.pub` or fix the path")
            } else {
                login.certificateFile = path
            }
        }
        login.passwordFile = readSecretFile(r, key: "password_file")
        login.passphraseFile = readSecretFile(r, key: "passphrase_file")
        return login
    }

    /// A file holding a secret, checked like a private key: it must exist and be
    /// readable by its owner only, since warren hands what is in it to ssh.
    private func readSecretFile(_ r: TableReader, key: String) -> String? {
        guard let value = r.string(key), let path = checkedPath(value, at: r.path(key), r.log) else { return nil }
        guard context.requireIdentityFiles else { return path }  // doctor reports it as a step
        guard context.isReadableFile(path) else {
            r.log.add(r.path(key), "\(path) does not exist or is not readable; write the secret into it and chmod 600 it")
            return nil
        }
        if let mode = context.fileMode(path), mode & 0o077 != 0 {
            r.log.add(r.path(key), "\(path) is readable by others (mode \(String(mode, radix: 8))); chmod 600 it: it holds a secret")
            return nil
        }
        if let why = context.untrustedFile(path, true) {
            r.log.add(r.path(key), "\(path) \(why)")
            return nil
        }
        return path
    }
}

extension LoginMethod {
    /// A tunnel's own settings, each falling back on `[defaults]`.
    static func merged(_ own: LoginMethod, over inherited: LoginMethod) -> LoginMethod {
        LoginMethod(
            identityAgent: own.identityAgent ?? inherited.identityAgent,
            certificateFile: own.certificateFile ?? inherited.certificateFile,
            certificateCommand: own.certificateCommand ?? inherited.certificateCommand,
            passwordFile: own.passwordFile ?? inherited.passwordFile,
            passphraseFile: own.passphraseFile ?? inherited.passphraseFile)
    }
}
