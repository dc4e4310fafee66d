import Foundation

/// The first state of every onboarding: tunnels whose key the bastion's
/// admin has not added yet.
extension Lab {
    /// Tunnels `names` to the lab's sshd, each forwarding a free local port
    /// to the target, all logging in with one new key (`<directory>/new_key`)
    /// that the sshd does not authorize yet.
    public func tunnelsWithANewKey(_ names: [String]) throws -> (config: String, ports: [Int], publicKey: String) {
        let newKey = directory.appending("new_key")
        let publicKey = try SSHKeygen.generate(at: newKey)
        var config = ""
        var ports: [Int] = []
        for name in names {
            let local = try forward()
            ports.append(local.port)
            config += SupervisorConfig.tunnel(name, sshd: sshd, local: [local.spec])
                .replacingOccurrences(of: "identity_file = \"\(sshd.clientKeyPath)\"", with: "identity_file = \"\(newKey)\"")
        }
        return (config, ports, publicKey)
    }

    /// The bastion's admin adds `publicKey` to the sshd's authorized_keys.
    public func authorize(_ publicKey: String) throws {
        try sshd.setAuthorizedKeys([sshd.clientPublicKey, publicKey])
    }
}
