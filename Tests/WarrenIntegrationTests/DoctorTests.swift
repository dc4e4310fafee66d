import Foundation
import Testing
import WarrenCore
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `warren doctor` against a real sshd and real targets: the right step fails,
/// with the right fix, for each thing users get wrong; all pass when healthy.
@Suite(.serialized) struct DoctorTests {
    /// Exactly `number` failed, with `kind`, and the fix and evidence say what they must.
    func expectFailure(
        _ report: DoctorReport, _ result: CommandResult, step number: Int, kind: FailureKind?,
        fix: [String], evidence: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(result.status == 1, "\(result)", sourceLocation: sourceLocation)
        #expect(!report.ok, sourceLocation: sourceLocation)
        #expect(report.failedNumbers == [number], "\(result.stdout)", sourceLocation: sourceLocation)
        guard let step = report.step(number) else { return }
        #expect(step.kind == kind?.rawValue, "\(result.stdout)", sourceLocation: sourceLocation)
        for text in fix {
            #expect(step.fix?.contains(text) == true, "fix lacks \"\(text)\": \(step.fix ?? "nil")", sourceLocation: sourceLocation)
        }
        let seen = step.evidence.joined(separator: "\n")
        for text in evidence {
            #expect(seen.contains(text), "evidence lacks \"\(text)\": \(seen)", sourceLocation: sourceLocation)
        }
        for later in report.steps where later.status == "skipped" {
            #expect(later.blockedBy == number, "step \(later.number) is blocked by the failure", sourceLocation: sourceLocation)
        }
    }

    @Test func healthyTunnelPassesEveryStepAndLeavesNothingRunning() async throws {
        try await withLab(.bastion()) { b in
            let started = ContinuousClock.now
            let result = try await b.warren(["doctor", "db"])
            print("doctor on a healthy tunnel: \(Int((ContinuousClock.now - started) / .milliseconds(1))) ms")
            #expect(result.status == 0, "\(result)")
            for n in 1...10 {
                #expect(result.stdout.contains("✓ \(n). "), "step \(n)\n\(result.stdout)")
            }
            #expect(!result.stdout.contains("✗"))
            #expect(result.stdout.contains("All 10 steps passed."))
            // The bastion's key is pinned as in the generated ssh_config, never left to ~/.ssh/known_hosts.
            let manual = "ssh -v -N -o ExitOnForwardFailure=yes -o IdentitiesOnly=yes -i \(b.key) -p \(b.sshd.port) -o HostKeyAlias=warren-db -o StrictHostKeyChecking=yes -o UserKnownHostsFile=\(b.tunnelFile("db", "known_hosts")) -o GlobalKnownHostsFile=/dev/null -L 127.0.0.1:\(b.localPort):127.0.0.1:\(b.target.port) \(b.sshd.user)@127.0.0.1"
            #expect(result.stdout.contains("Reproduce by hand:\n  \(manual)\n"), "\(result.stdout)")
            #expect(result.stdout.contains("ssh -F \(b.tunnelFile("db", "ssh_config")) -N warren-db"))
            #expect(b.target.acceptedConnections >= 2, "step 8 (ssh -W) and step 10 (through the forward) reached the target")
            // Every ssh the doctor started is gone, and the port is free again.
            #expect(ProcessTable.processes(withCmdlineContaining: b.stateDir).isEmpty)
            #expect(!FreePort.isListening(b.localPort))

            // The command does what it says, typed as printed (no tty to answer a host key prompt).
            let byHand = try SpawnedProcess.spawn("/bin/sh", ["-c", "exec \(manual)"], log: b.directory.appending("by-hand.log"))
            let echoed = waitUntil(timeout: .seconds(15)) { (try? TCPClient.echo(port: b.localPort)) == true }
            _ = byHand.terminate()
            #expect(echoed, "the command reproduces the tunnel: \((try? String(contentsOfFile: b.directory.appending("by-hand.log"), encoding: .utf8)) ?? "")")

            let (json, report) = try await b.doctor("db")
            #expect(json.status == 0 && report.ok && report.steps.count == 10)
            #expect(report.steps.allSatisfy { $0.status == "pass" && !$0.evidence.isEmpty })
        }
    }

    /// ProxyJump: every hop prints its own login and its own `ssh -W` channel,
    /// so the doctor must count them to know when the bastion's part begins.
    @Test func healthyTunnelThroughAJumpHopPasses() async throws {
        try await withLab(.bastion()) { b in
            let jump = try b.startSSHD()
            let hopKey = try b.copyKey(jump.clientKeyPath, as: "hop_key")
            let text = try String(contentsOfFile: b.configPath, encoding: .utf8)
            try text.appending("""

                [[tunnels.db.jump]]
                host = "127.0.0.1"
                port = \(jump.port)
                identity_file = "\(hopKey)"
                host_key = "\(jump.hostKeyLine)"
                """).write(toFile: b.configPath, atomically: true, encoding: .utf8)
            let (result, report) = try await b.doctor("db")
            #expect(result.status == 0 && report.ok, "\(result.stdout)")
            #expect(report.step(3)?.evidence.first?.hasPrefix("jump hop 1") == true)
            #expect(report.step(7)?.evidence.contains { $0.contains("through 1 jump hop") } == true)
            #expect(jump.logText().contains("Accepted publickey"), "the hop was used")

            // The bastion refusing the key, behind a hop that accepts its own: step 7 still says auth_failed.
            try b.sshd.setAuthorizedKeys([])
            let (refused, refusedReport) = try await b.doctor("db")
            expectFailure(refusedReport, refused, step: 7, kind: .authFailed, fix: ["authorized_keys"])

            // The hop cannot reach the bastion at all: the hop's failed channel is
            // the bastion refusing connections, not a target that does not answer.
            b.sshd.stop()
            let (unreachable, unreachableReport) = try await b.doctor("db")
            let failed = try #require(unreachableReport.steps.first { $0.status == "fail" }, "\(unreachable.stdout)")
            #expect(failed.kind == FailureKind.connectionRefused.rawValue, "\(unreachable.stdout)")
            #expect(failed.kind != FailureKind.targetUnreachable.rawValue)
            #expect(failed.evidence.joined().contains("a jump hop could not reach the next host"), "\(unreachable.stdout)")
        }
    }

    /// Users run doctor while `warren run` keeps the tunnel up: warren holds
    /// the local port for the tunnel's ssh, which is then not a problem, and step 10 probes it.
    @Test func tunnelAlreadyRunByWarrenRunIsProbedNotReported() async throws {
        try await withLab(.bastion()) { b in
            let run = try b.spawn(CommandRunner.warrenBinary, ["run", "--config", b.configPath], log: "run.log")
            defer { _ = run.terminate(grace: .seconds(5)) }
            #expect(FreePort.waitUntilListening(b.localPort, timeout: .seconds(20)), "\(run.logText())")
            let (result, report) = try await b.doctor("db")
            #expect(result.status == 0 && report.ok, "\(result.stdout)")
            #expect(report.step(9)?.evidence.first?.contains("held by this tunnel's `warren run`") == true, "\(result.stdout)")
            #expect(report.step(10)?.evidence.first?.contains("already up") == true)
            #expect(FreePort.isListening(b.localPort), "the running tunnel is left alone")
        }
    }

    @Test func keyNotAuthorizedFailsAtAuthentication() async throws {
        try await withLab(.bastion()) { b in
            try b.sshd.setAuthorizedKeys([])
            let (result, report) = try await b.doctor("db")
            expectFailure(report, result, step: 7, kind: .authFailed,
                          fix: ["authorized_keys", "~/.ssh 0700", "warren authorized-key db"],
                          evidence: ["Permission denied (publickey)", "refused the key \(b.key)"])
            #expect(report.step(8)?.status == "skipped" && report.step(9)?.status == "pass")
        }
    }

    @Test func keyFileReadableByOthersFailsAtTheKeyStep() async throws {
        try await withLab(.bastion()) { b in
            chmod(b.key, 0o644)
            let (result, report) = try await b.doctor("db")
            expectFailure(report, result, step: 2, kind: .keyPermissions, fix: ["chmod 600 \(b.key)"], evidence: ["mode 0644"])
            // The network steps do not need the key, so they still ran.
            #expect((3...6).allSatisfy { report.step($0)?.status == "pass" })
        }
    }

    @Test func missingKeyFileFailsAtTheKeyStepAndSuggestsKeygen() async throws {
        try await withLab(.bastion(identity: false)) { b in
            let (result, report) = try await b.doctor("db")
            expectFailure(report, result, step: 2, kind: .keyMissing, fix: ["warren keygen"],
                          evidence: ["\(b.stateDir)/keys/id_ed25519: No such file or directory"])
            #expect(report.step(1)?.status == "pass", "a missing key is step 2's finding, not an invalid config")
        }
    }

    @Test func strictModesRefusingAGroupWritableAuthorizedKeysFailsAtAuthentication() async throws {
        try await withLab(.bastion(.strict())) { b in
            // First prove the strict server accepts the key while the file is 0600.
            #expect(try await b.doctor("db").report.step(7)?.status == "pass")
            // Debian's sshd accepts a group-writable file when the group is the
            // owner's private group (its user-group-modes patch; root's group
            // is such a group), so make it writable by a group with other members.
            let group = try #require(getgrnam("nogroup"), "group nogroup is missing").pointee.gr_gid
            #expect(chown(b.sshd.authorizedKeysPath, getuid(), group) == 0)
            chmod(b.sshd.authorizedKeysPath, 0o664)
            let (result, report) = try await b.doctor("db")
            expectFailure(report, result, step: 7, kind: .authFailed,
                          fix: ["authorized_keys 0600 or 0644", "owned by that user"], evidence: ["Permission denied (publickey)"])
            #expect(b.sshd.waitForLog(containing: "bad ownership or modes for file \(b.sshd.authorizedKeysPath)"))
        }
    }

    @Test func changedHostKeyFailsAtTheHostKeyStepWithBothFingerprints() async throws {
        try await withLab(.bastion()) { b in
            let old = try HostKey.parse(b.sshd.hostKeyLine).get()
            let new = try HostKey.parse(try b.sshd.rotateHostKey()).get()
            let (result, report) = try await b.doctor("db")
            expectFailure(report, result, step: 6, kind: .hostKeyChanged,
                          fix: ["confirm the new fingerprint", "warren hostkey db"],
                          evidence: ["pinned (tunnels.db.host_key): 256 \(old.fingerprint!) (ED25519)", "offered now: ssh-ed25519 \(new.fingerprint!)"])
        }
    }

    @Test func closedPortFailsAtTCPWithConnectionRefused() async throws {
        try await withLab(.bastion()) { b in
            let closed = try FreePort.find()
            try b.writeConfig("""
                [tunnels.db]
                host = "127.0.0.1"
                port = \(closed)
                identity_file = "\(b.key)"
                host_key = "\(b.sshd.hostKeyLine)"
                local_forward = "\(b.localPort):127.0.0.1:\(b.target.port)"
                """)
            let (result, report) = try await b.doctor("db")
            expectFailure(report, result, step: 4, kind: .connectionRefused, fix: ["is sshd running there"],
                          evidence: ["connect to host 127.0.0.1 port \(closed): Connection refused"])
        }
    }

    /// An address that drops every packet, inside a network namespace this
    /// test creates with `unshare --net` (it dies with the command, so nothing
    /// is left behind even if the test fails): a veth pair, and a permanent
    /// neighbour entry that sends the packets to a MAC nobody has.
    @Test func addressThatDropsPacketsFailsAtTCPAndAsksAboutTheAllowlist() async throws {
        let lab = try Lab(prefix: "ws-", sshd: nil)
        defer { lab.stop() }
        let key = try lab.directory.write("-----BEGIN OPENSSH PRIVATE KEY-----\nnot used: ssh never gets past the connect\n", to: "id_ed25519")
        try lab.writeConfig("""
            [tunnels.db]
            host = "10.231.7.2"
            identity_file = "\(key)"
            host_key = "\(ConfigCases.hostKey)"
            connect_timeout = 2
            local_forward = "15432:db.internal:5432"
            """)
        let setup = [
            "ip link set lo up",
            "ip link add wdrop0 type veth peer name wdrop1",
            "ip addr add 10.231.7.1/24 dev wdrop0",
            "ip link set wdrop0 up", "ip link set wdrop1 up",
            "ip neigh add 10.231.7.2 lladdr 02:00:00:00:07:02 dev wdrop0 nud permanent",
        ].joined(separator: " && ")
        let script = "\(setup) && exec \"$0\" doctor db --json --config \"$1\""
        let started = ContinuousClock.now
        let result = try await CommandRunner.run("/usr/bin/unshare", ["--net", "/bin/sh", "-c", script, CommandRunner.warrenBinary, lab.configPath])
        let elapsed = ContinuousClock.now - started
        #expect(!result.stderr.contains("ip:") && !result.stderr.contains("unshare:"), "namespace setup failed: \(result)")
        let report = try JSONDecoder().decode(DoctorReport.self, from: Data(result.stdout.utf8))
        expectFailure(report, result, step: 4, kind: .connectTimeout,
                      fix: ["public IP allowlisted on the bastion or its security group"],
                      evidence: ["connect to host 10.231.7.2 port 22: Connection timed out"])
        #expect(elapsed >= .seconds(2), "the connect waited for connect_timeout: the packets were dropped, not refused")
        #expect(report.step(9)?.status == "pass")
    }

    @Test func targetDownBehindTheBastionFailsAtTargets() async throws {
        try await withLab(.bastion()) { b in
            b.target.stop()
            let (result, report) = try await b.doctor("db")
            expectFailure(report, result, step: 8, kind: .targetUnreachable,
                          fix: ["security group", "nc -z 127.0.0.1 \(b.target.port)"],
                          evidence: ["open failed: connect failed: Connection refused"])
            #expect(report.step(10)?.status == "skipped")
        }
    }

    @Test func localPortTakenFailsAtLocalPortsAndNamesTheHolder() async throws {
        try await withLab(.bastion()) { b in
            let squatter = try b.startTarget(port: b.localPort)
            defer { squatter.stop() }
            let (result, report) = try await b.doctor("db")
            expectFailure(report, result, step: 9, kind: .localPortInUse,
                          fix: ["ss -ltnp 'sport = :\(b.localPort)'"],
                          evidence: ["127.0.0.1 port \(b.localPort) is already taken by pid \(getpid())"])
            #expect(report.step(8)?.status == "pass", "the bastion side does not depend on the local port")
        }
    }

    @Test func failingRunPrintsStepsWithMarksAndTheFix() async throws {
        try await withLab(.bastion()) { b in
            try b.sshd.setAuthorizedKeys([])
            let result = try await b.warren(["doctor", "db"])
            #expect(result.status == 1)
            #expect(result.stdout.contains("✓ 6. host key matches the pin\n"))
            #expect(result.stdout.contains("✗ 7. authentication\n"))
            #expect(result.stdout.contains("     fix: the bastion refused the key"))
            #expect(result.stdout.contains("- 8. targets reachable from the bastion: not run (step 7 failed)\n"))
            #expect(result.stdout.contains("Failed: step 7 (authentication, auth_failed)."))
            #expect(result.stdout.contains("Reproduce by hand:\n  ssh -v -N "))
        }
    }
}
