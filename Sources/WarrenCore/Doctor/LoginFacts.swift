/// What one `ssh -v` login run shows about the first host and every host's
/// key, read from ssh's own log: `warren doctor` takes its TCP, banner and
/// host-key steps from the same run that logs in, instead of separate
/// connections that end before a login (each of which costs this machine's
/// address a second of sshd's PerSourcePenalties since OpenSSH 9.8). Pure.
///
/// The server's version and any text it sent before its banner come from the
/// server: they are evidence to show (escaped), never a decision.
public struct LoginFacts: Sendable, Equatable {
    /// `debug1: Connection established.` of the first host.
    public private(set) var connected = false
    /// The address ssh dialled first: `HOST [ADDRESS] port P`.
    public private(set) var dialled: String?
    /// The first host's software, from its banner (`OpenSSH_10.5`, `dropbear_2022.83`).
    public private(set) var serverSoftware: String?
    /// Lines a server sent before its banner (`Not allowed at this time`).
    public private(set) var preBanner: [String] = []
    /// `TYPE SHA256:...` offered by each host, in the order ssh met them.
    public private(set) var offeredKeys: [String] = []
    /// `Host '[H]:P' is known and matches the TYPE host key.`, per host.
    public private(set) var matchedKeys: [String] = []
    /// The key exchange the first host agreed to.
    public private(set) var kex: String?

    public init() {}

    public mutating func read(_ raw: String) {
        var line = Substring(raw)
        while line.last == "\r" || line.last == "\n" { line.removeLast() }
        if line.hasPrefix("debug1: Connecting to "), dialled == nil {
            dialled = String(line.dropFirst("debug1: Connecting to ".count)).trimmingSuffix(".")
        } else if line == "debug1: Connection established." {
            connected = true
        } else if let rest = line.after("debug1: Remote protocol version "), let marker = rest.range(of: ", remote software version ") {
            if serverSoftware == nil { serverSoftware = String(rest[marker.upperBound...]) }
        } else if let rest = line.after("debug1: kex_exchange_identification: banner line "), let colon = rest.firstIndex(of: ":") {
            if preBanner.count < 3 { preBanner.append(String(rest[rest.index(after: colon)...].drop { $0 == " " })) }
        } else if let rest = line.after("debug1: Server host key: ") {
            offeredKeys.append(String(rest))
        } else if line.hasPrefix("debug1: Host '") && line.contains("' is known and matches the ") {
            matchedKeys.append(String(line.dropFirst("debug1: ".count)))
        } else if let rest = line.after("debug1: kex: algorithm: "), kex == nil {
            kex = String(rest)
        }
    }

    /// What follows from the server's software for warren: OpenSSH's
    /// version (penalties since 9.8), or Dropbear. Nil when it names neither.
    public var serverNotes: String? {
        guard let software = serverSoftware else { return nil }
        if software.lowercased().hasPrefix("dropbear") {
            return "Dropbear: no PerSourcePenalties; an OpenSSH 10.1+ client prints a post-quantum warning against it (warren keeps that at debug)"
        }
        guard let version = Self.openSSHVersion(software) else { return nil }
        var notes: [String] = []
        if version >= (9, 8) {
            notes.append("OpenSSH 9.8 or later: PerSourcePenalties are on by default (a failed login costs this address 5 s, a connection without a login 1 s; past 15 s the address is blocked), so warren counts every connection it makes")
        } else {
            notes.append("OpenSSH before 9.8: no PerSourcePenalties by default")
        }
        if let kex, !Self.postQuantum(kex) {
            notes.append("its key exchange (\(kex)) is not post-quantum: an OpenSSH 10.1+ client warns about it")
        }
        return notes.joined(separator: "; ")
    }

    /// `OpenSSH_10.5`, `OpenSSH_9.2p1 Debian-2+deb12u3` -> (10, 5), (9, 2).
    static func openSSHVersion(_ software: String) -> (Int, Int)? {
        guard let rest = Substring(software).after("OpenSSH_") else { return nil }
        let parts = rest.prefix { $0.isNumber || $0 == "." }.split(separator: ".")
        guard parts.count >= 2, let major = Int(parts[0]), let minor = Int(parts[1]) else { return nil }
        return (major, minor)
    }

    static func postQuantum(_ kex: String) -> Bool {
        kex.hasPrefix("sntrup761") || kex.hasPrefix("mlkem768")
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
