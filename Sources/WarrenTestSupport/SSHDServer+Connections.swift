#if canImport(Glibc)
import Glibc
#endif

extension SSHDServer {
    /// The per-connection sshd processes: every descendant of the listener.
    /// They are ours because we started their parent.
    public var connectionProcesses: [ProcessTable.Entry] {
        guard let pid = listenerPID else { return [] }
        return ProcessTable.descendants(of: pid)
    }

    /// SIGKILLs every per-connection sshd but leaves the listener up, as a
    /// bastion dropping its sessions does. Returns once the listener has
    /// reaped them (or, while frozen, once they are dead). Only the
    /// connections open at the call: a client reconnecting meanwhile (warren
    /// does within a few hundred milliseconds) is a new session, not a victim.
    public func killConnections() {
        guard let pid = listenerPID else { return }
        let frozen = isFrozen
        let open = Set(ProcessTable.descendants(of: pid).filter { $0.parent == pid }.map(\.pid))
        Self.killTree(below: pid, waitForReaping: !frozen, within: open)
    }

    /// SIGSTOPs the listener and every connection: the bastion hangs. New
    /// connects complete the TCP handshake but get no banner; established
    /// sessions stop answering keepalives.
    public func freezeConnections() {
        guard let pid = listenerPID else { return }
        kill(pid, SIGSTOP)  // first, so it forks nothing new meanwhile
        let frozen = ProcessTable.descendants(of: pid).filter { !$0.isZombie }
        for entry in frozen {
            ProcessTable.signal(entry, SIGSTOP)
        }
        // SIGSTOP takes effect asynchronously: return only once all are stopped.
        _ = waitUntil(timeout: .seconds(2), every: .milliseconds(1)) {
            ([pid] + frozen.map(\.pid)).allSatisfy { ProcessTable.entry($0).map { $0.state != "R" && $0.state != "S" && $0.state != "D" } ?? true }
        }
        setFrozen(true)
    }

    /// SIGCONTs what `freezeConnections()` stopped.
    public func thawConnections() {
        guard let pid = listenerPID else { return }
        Self.thaw(pid)
        setFrozen(false)
    }

    static func thaw(_ listener: pid_t) {
        for entry in ProcessTable.descendants(of: listener) where !entry.isZombie {
            ProcessTable.signal(entry, SIGCONT)
        }
        kill(listener, SIGCONT)
    }

    /// SIGKILLs every descendant of `root`, leaves first, so each dies while
    /// its parent lives to reap it (an orphaned zombie would stay forever on
    /// this machine). A parent that leaves a dead child unreaped for a second
    /// is killed anyway.
    /// With `within`, only the subtrees of those children of `root`.
    static func killTree(below root: pid_t, waitForReaping: Bool, within: Set<pid_t>? = nil, timeout: Duration = .seconds(5)) {
        let start = ContinuousClock.now
        _ = waitUntil(timeout: timeout, every: .milliseconds(5)) {
            var tree = ProcessTable.descendants(of: root)
            if let within {
                let parentOf = Dictionary(tree.map { ($0.pid, $0.parent) }, uniquingKeysWith: { first, _ in first })
                func top(_ pid: pid_t) -> pid_t {
                    var pid = pid
                    while let parent = parentOf[pid], parent != root { pid = parent }
                    return pid
                }
                tree = tree.filter { within.contains(top($0.pid)) }
            }
            let living = tree.filter { !$0.isZombie }
            if living.isEmpty { return !waitForReaping || tree.isEmpty }
            let parents = Set(tree.map(\.parent))
            let patient = ContinuousClock.now - start < .seconds(1)
            for entry in living where !patient || !parents.contains(entry.pid) {
                ProcessTable.signal(entry, SIGKILL)
            }
            return false
        }
    }
}
