/// Why `warren check` found a tunnel not OK: a `FailureKind` (what ssh or a
/// probe said), or one of check's own findings. The raw values are public
/// interface (`warren check` output and its JSON, see docs/check-json.md).
public enum CheckKind: Hashable, Sendable {
    /// ssh or a probe failed in a way the supervisor also names.
    case failure(FailureKind)
    /// A supervisor runs for this state directory but does not run this tunnel.
    case notSupervised
    /// No supervisor runs for the state directory, and `--require-supervisor`
    /// says that is the finding: nothing keeps the tunnel up.
    case noSupervisor
    /// The supervisor says the tunnel is connected, but nothing accepts
    /// connections on one of its forwards.
    case notListening
    /// ssh has not become ready for the whole check (starting or connecting,
    /// with no earlier failure to name).
    case notReady
    /// No answer within `--timeout`: warren cannot tell whether it works.
    case noAnswer
    /// Up, but `host_key_policy = "insecure-no-check"`: anyone on the path
    /// could be the bastion. A WARNING, never OK.
    case hostKeyNotChecked

    /// The kinds that only `warren check` reports.
    public static let checkOnly: [CheckKind] = [.notSupervised, .noSupervisor, .notListening, .notReady, .noAnswer, .hostKeyNotChecked]

    public var rawValue: String {
        switch self {
        case .failure(let kind): return kind.rawValue
        case .notSupervised: return "not_supervised"
        case .noSupervisor: return "no_supervisor"
        case .notListening: return "not_listening"
        case .notReady: return "not_ready"
        case .noAnswer: return "no_answer"
        case .hostKeyNotChecked: return "host_key_not_checked"
        }
    }

    public init?(rawValue: String) {
        if let kind = FailureKind(rawValue: rawValue) {
            self = .failure(kind)
            return
        }
        guard let own = Self.checkOnly.first(where: { $0.rawValue == rawValue }) else { return nil }
        self = own
    }

    /// What a human should do, with placeholders (`TUNNEL`).
    public var hint: String { hint(in: .placeholders) }

    /// What a human should do, naming the tunnel and the failing host.
    public func hint(in context: HintContext) -> String {
        switch self {
        case .failure(let kind):
            return kind.hint(in: context)
        case .notSupervised:
            return "the running warren does not supervise this tunnel: is it enabled, and was warren reloaded after the config changed (systemctl reload warren, or kill -HUP its pid)?"
        case .noSupervisor:
            return "no `warren run` supervises this state directory, so nothing keeps the tunnel up: start it (systemctl start warren, or `warren run --config CONFIG`), or check with the --state-dir it runs with"
        case .notListening:
            return "warren reports the tunnel connected but its local port does not accept connections: look at `warren status` and warren's log; restart warren if it persists"
        case .notReady:
            return "ssh has not finished connecting: if this lasts, the bastion is slow or unreachable (see connect_timeout); run `warren doctor \(context.tunnel)`"
        case .hostKeyNotChecked:
            return "anyone on the path can impersonate the bastion: pin its key (`warren hostkey \(context.tunnel)` prints the line) or use host_key_policy = \"accept-new\""
        case .noAnswer:
            return "no answer within the check's --timeout: raise --timeout above the tunnel's connect_timeout, or run `warren doctor \(context.tunnel)`"
        }
    }
}

extension CheckKind: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let kind = CheckKind(rawValue: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown kind \(text)"))
        }
        self = kind
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
