extension ConfigLoader {
    func readTunnel(name: String, _ r: TableReader, inherited: Inheritable, stateDir: String) -> TunnelConfig? {
        let before = r.log.issues.count
        r.rejectUnknownKeys(allowed: Self.tunnelKeys, context: "a tunnel")
        let own = readInheritable(r, stateDir: stateDir, tunnelName: name)
        let policy = own.hostKeyPolicy ?? inherited.hostKeyPolicy ?? .pinned

        let inheritsHost = r.table["host"] == nil && inherited.host != nil
        let host = inheritsHost ? inherited.host! : readHost(r, role: "the bastion's")
        let identityFile = resolveIdentity(own: own, inherited: inherited, stateDir: stateDir, tunnel: name, r)
        // The shared bastion's pins from [defaults] hold only for tunnels that go to that bastion.
        let usesDefaultPins = r.table["host_key"] == nil && policy == .pinned && host == inherited.host
        let pins = usesDefaultPins ? (inherited.hostPins ?? ([], [])) : readHostKeys(r, policy: policy)
        var login = LoginMethod.merged(own.login, over: inherited.login)
        if login.certificateCommand != nil {
            let key = r.table["certificate_command"] != nil ? r.path("certificate_command") : "defaults.certificate_command"
            if let identityFile, !identityFile.isEmpty {
                // ssh would also find it there by itself; warren names it in ssh_config all the same.
                if login.certificateFile == nil { login.certificateFile = identityFile + "-cert.pub" }
            } else if identityFile != nil {
                r.log.add(key, "needs a key file to certify (identity_file, or warren's own key from `warren keygen`): an agent or a password has no public key file for {public_key}")
            }
        }
        let endpoint = SSHEndpoint(
            host: host, port: own.port ?? inherited.port ?? TunnelConfig.Defaults.port,
            user: own.user ?? inherited.user, identityFile: identityFile ?? "",
            hostKeys: pins.keys, hostKeyFingerprints: pins.fingerprints, hostKeyPolicy: policy,
            login: login)

        var jumps: [SSHEndpoint] = []
        for hop in r.tables("jump") ?? [] {
            hop.rejectUnknownKeys(allowed: Self.jumpKeys, context: "a jump hop")
            let hopOwn = readInheritable(
                TableReader(prefix: hop.prefix, table: hop.table.filter { Self.jumpKeys.contains($0.key) && $0.key != "host" && $0.key != "host_key" }, log: hop.log),
                stateDir: stateDir, tunnelName: name)
            let hopPolicy = hopOwn.hostKeyPolicy ?? policy
            let hopHost = readHost(hop, role: "the jump host's")
            let hopPins = readHostKeys(hop, policy: hopPolicy)
            jumps.append(
                SSHEndpoint(
                    host: hopHost, port: hopOwn.port ?? inherited.port ?? TunnelConfig.Defaults.port,
                    user: hopOwn.user ?? endpoint.user,
                    identityFile: hopOwn.identityFile ?? endpoint.identityFile,
                    hostKeys: hopPins.keys, hostKeyFingerprints: hopPins.fingerprints,
                    hostKeyPolicy: hopPolicy, login: endpoint.login))
        }

        let local = readForwards(r, key: "local_forward", kind: .local)
        let remote = readForwards(r, key: "remote_forward", kind: .remote)
        let dynamic = readForwards(r, key: "dynamic_forward", kind: .dynamic)
        if local.isEmpty && remote.isEmpty && dynamic.isEmpty && r.log.issues.count == before {
            r.log.add(
                r.path("local_forward"),
                "a tunnel needs at least one forward: local_forward, remote_forward or dynamic_forward")
        }

        let backoffMin = own.backoffMin ?? inherited.backoffMin ?? TunnelConfig.Defaults.backoffMin
        let backoffMax = own.backoffMax ?? inherited.backoffMax ?? TunnelConfig.Defaults.backoffMax
        if backoffMax < backoffMin {
            r.log.add(r.path("backoff_max"), "\(backoffMax) is below backoff_min (\(backoffMin)); backoff_max must be at least backoff_min")
        }
        guard r.log.issues.count == before else { return nil }
        let tunnel = TunnelConfig(
            name: name, endpoint: endpoint, jumps: jumps,
            localForwards: local, remoteForwards: remote, dynamicForwards: dynamic,
            keepaliveInterval: own.keepaliveInterval ?? inherited.keepaliveInterval ?? TunnelConfig.Defaults.keepaliveInterval,
            keepaliveCount: own.keepaliveCount ?? inherited.keepaliveCount ?? TunnelConfig.Defaults.keepaliveCount,
            connectTimeout: own.connectTimeout ?? inherited.connectTimeout ?? TunnelConfig.Defaults.connectTimeout,
            backoffMin: backoffMin, backoffMax: backoffMax,
            probeInterval: own.probeInterval ?? inherited.probeInterval ?? TunnelConfig.Defaults.probeInterval,
            allowedFrom: own.allowedFrom ?? inherited.allowedFrom ?? [],
            enabled: r.bool("enabled") ?? true,
            shareConnection: own.shareConnection ?? inherited.shareConnection ?? false,
            replicas: (own.replicas ?? inherited.replicas)?.value ?? 1,
            replicasKeyPath: (own.replicas ?? inherited.replicas)?.path,
            allowPublicSocks: own.allowPublicSocks ?? inherited.allowPublicSocks ?? false,
            keyMaxAgeDays: own.keyMaxAgeDays ?? inherited.keyMaxAgeDays)
        for issue in tunnel.refusedPublicSocks { r.log.add(issue) }
        return r.log.issues.count == before ? tunnel : nil
    }

    /// The tunnel's key, else the default's, else warren's own default key.
    private func resolveIdentity(own: Inheritable, inherited: Inheritable, stateDir: String, tunnel: String, _ r: TableReader) -> String? {
        if r.table["identity_file"] != nil { return own.identityFile }
        if let path = inherited.identityFile { return path }
        if inherited.identityFilePath != nil { return nil }  // already reported at defaults.identity_file
        // An agent holds the keys, or a password logs in: no key file is needed.
        let login = LoginMethod.merged(own.login, over: inherited.login)
        if login.identityAgent != nil || login.passwordFile != nil { return "" }
        let fallback = ConfigContext.defaultIdentityFile(stateDir: stateDir, tunnel: tunnel, exists: context.isReadableFile)
        guard context.isReadableFile(fallback) || !context.requireIdentityFiles else {
            r.log.add(
                r.path("identity_file"),
                "not set, and warren's default key \(fallback) does not exist; run `warren keygen` or set identity_file")
            return nil
        }
        return fallback
    }

    /// The required `host` key; "" (with an issue logged) when missing or invalid.
    func readHost(_ r: TableReader, role: String) -> String {
        guard let value = r.string("host") else {
            if r.table["host"] == nil { r.log.add(r.path("host"), "is required: \(role) host name or address") }
            return ""
        }
        if let reason = ValueRules.hostReason(value) {
            r.log.add(r.path("host"), "host \"\(TerminalText.escape(value))\" \(reason)")
            return ""
        }
        return value
    }

    /// `host_key`: each entry a key (`TYPE BASE64`) or a fingerprint (`SHA256:...`).
    func readHostKeys(_ r: TableReader, policy: HostKeyPolicy) -> (keys: [HostKey], fingerprints: [HostKeyFingerprint]) {
        let entries = r.strings("host_key")
        switch policy {
        case .pinned:
            guard let entries, !entries.isEmpty else {
                if r.table["host_key"] == nil && context.requireHostKeys {
                    r.log.add(
                        r.path("host_key"),
                        "is required with host_key_policy \"pinned\" (the default); run `warren hostkey TUNNEL` to print it, or set host_key_policy = \"accept-new\"")
                }
                return ([], [])
            }
            var keys: [HostKey] = []
            var fingerprints: [HostKeyFingerprint] = []
            for entry in entries {
                if HostKeyFingerprint.looksLikeFingerprint(entry.value) {
                    switch HostKeyFingerprint.parse(entry.value) {
                    case .success(let pin): fingerprints.append(pin)
                    case .failure(let error): r.log.add(entry.path, error.reason)
                    }
                    continue
                }
                switch HostKey.parse(entry.value) {
                case .success(let key): keys.append(key)
                case .failure(let error): r.log.add(entry.path, error.reason)
                }
            }
            return (keys, fingerprints)
        case .acceptNew, .insecureNoCheck:
            if r.table["host_key"] != nil {
                r.log.add(r.path("host_key"), "must be absent with host_key_policy \"\(policy.rawValue)\"; pin the key or drop the policy")
            }
            return ([], [])
        }
    }

    private func readForwards(_ r: TableReader, key: String, kind: Forward.Kind) -> [Forward] {
        (r.strings(key) ?? []).compactMap { entry in
            switch Forward.parse(entry.value, kind: kind) {
            case .success(let forward): return forward
            case .failure(let error):
                r.log.add(entry.path, error.reason)
                return nil
            }
        }
    }

    /// No two local listeners, in any tunnels, on the same port of overlapping addresses.
    static func checkLocalListeners(_ tunnels: [TunnelConfig], origins: [String: TunnelOrigin] = [:], _ log: IssueLog) {
        var seen: [(path: String, endpoint: Forward.Endpoint, file: String?)] = []
        for tunnel in tunnels {
            for (key, forwards) in [("local_forward", tunnel.localForwards), ("dynamic_forward", tunnel.dynamicForwards)] {
                for (i, forward) in forwards.enumerated() {
                    let path = "tunnels.\(tunnel.name).\(key)[\(i)]"
                    let origin = origins[tunnel.name]
                    if let clash = seen.first(where: { Self.overlaps($0.endpoint, forward.listen) }) {
                        let clashFile = clash.file == origin?.file ? "" : " (in \(TerminalText.escape(clash.file ?? "")))"
                        log.add(
                            path, "listens on \(forward.listen), which \(clash.path)\(clashFile) also uses; each local listener needs its own port",
                            file: origin?.isMain == false ? origin?.file : nil)
                    }
                    seen.append((path, forward.listen, origin?.file))
                }
            }
        }
    }

    static func overlaps(_ a: Forward.Endpoint, _ b: Forward.Endpoint) -> Bool {
        switch (a, b) {
        case (.unix(let p), .unix(let q)): return p == q
        case (.tcp(let h1, let p1), .tcp(let h2, let p2)):
            guard p1 == p2 else { return false }
            let s1 = addresses(h1), s2 = addresses(h2)
            return s1.contains("*") || s2.contains("*") || !s1.isDisjoint(with: s2)
        default: return false
        }
    }

    /// The addresses a bind address stands for; "*" is every address.
    private static func addresses(_ host: String?) -> Set<String> {
        switch host {
        case nil, "localhost": return ["127.0.0.1", "::1"]
        case "*", "0.0.0.0", "::": return ["*"]
        case let h?: return [h.lowercased()]
        }
    }
}
