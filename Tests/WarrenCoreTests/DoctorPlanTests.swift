import Testing
import WarrenCore
import WarrenTestSupport

/// The doctor's step order and where it stops, without processes.
@Suite struct DoctorPlanTests {
    /// Walks the plan with `failing` failing, and returns what ran.
    func walk(failing: Set<DoctorStep>) async -> (ran: [DoctorStep], results: [DoctorStep: StepOutcome]) {
        var ran: [DoctorStep] = []
        let results = await DoctorPlan.walk { step in
            ran.append(step)
            return failing.contains(step) ? .failed(evidence: ["x"], fix: "y", kind: nil) : .passed(evidence: [])
        }
        return (ran, results)
    }

    @Test func healthyRunsEveryStepInOrder() async {
        let (ran, results) = await walk(failing: [])
        #expect(ran == DoctorStep.allCases)
        #expect(ran.map(\.rawValue) == Array(1...10))
        #expect(DoctorReport(tunnel: "t", configFile: "f", results: results, manualCommand: nil, warrenCommand: nil).ok)
    }

    @Test(arguments: [
        // failing step, steps that must not run
        (DoctorStep.config, Set(DoctorStep.allCases).subtracting([.config])),
        (.keyFile, [.authentication, .targets, .endToEnd]),
        (.nameResolves, [.tcpConnect, .sshBanner, .hostKey, .authentication, .targets, .endToEnd]),
        (.tcpConnect, [.sshBanner, .hostKey, .authentication, .targets, .endToEnd]),
        (.sshBanner, [.hostKey, .authentication, .targets, .endToEnd]),
        (.hostKey, [.authentication, .targets, .endToEnd]),
        (.authentication, [.targets, .endToEnd]),
        (.targets, [.endToEnd]),
        (.localPorts, [.endToEnd]),
        (.endToEnd, []),
    ] as [(DoctorStep, Set<DoctorStep>)])
    func aFailureStopsOnlyWhatDependsOnIt(_ failing: DoctorStep, _ blocked: Set<DoctorStep>) async {
        let (ran, results) = await walk(failing: [failing])
        #expect(Set(ran) == Set(DoctorStep.allCases).subtracting(blocked))
        #expect(ran == ran.sorted(), "steps run in their numbered order")
        for step in blocked {
            #expect(results[step] == .skipped(because: failing), "\(step) names the root cause")
        }
        let report = DoctorReport(tunnel: "t", configFile: "f", results: results, manualCommand: nil, warrenCommand: nil)
        #expect(!report.ok)
        #expect(report.failedSteps.map(\.number) == [failing.rawValue])
    }

    @Test func twoIndependentFailuresAreBothReported() async {
        let (ran, results) = await walk(failing: [.keyFile, .localPorts])
        #expect(ran.contains(.hostKey) && ran.contains(.localPorts))
        #expect(!ran.contains(.authentication))
        #expect(results[.endToEnd] == .skipped(because: .keyFile), "the first failed requirement is named")
    }

    @Test func everyRequirementComesEarlier() {
        for step in DoctorStep.allCases {
            #expect(step.requires.allSatisfy { $0 < step }, "\(step)")
        }
    }

    @Test func textMarksEachStepAndEndsWithTheCommands() async {
        let (_, results) = await walk(failing: [.authentication])
        let report = DoctorReport(tunnel: "db", configFile: "/etc/warren/warren.toml", results: results,
                                  manualCommand: "ssh -N -L 1:a:2 b", warrenCommand: "ssh -F /s/ssh_config -N warren-db")
        let steps = report.steps.map(DoctorText.step).joined()
        #expect(steps.contains("✓ 1. config is valid\n"))
        #expect(steps.contains("✗ 7. authentication\n     x\n     fix: y\n"))
        #expect(steps.contains("- 8. targets reachable from the bastion: not run (step 7 failed)\n"))
        let summary = DoctorText.summary(report)
        #expect(summary.contains("Failed: step 7 (authentication)."))
        #expect(summary.hasSuffix("Reproduce by hand:\n  ssh -N -L 1:a:2 b\nExactly as warren runs it:\n  ssh -F /s/ssh_config -N warren-db\n"))
    }

    @Test func manualCommandReproducesTheTunnel() throws {
        let config = try makeLoader().load(text: substitute(ConfigCases.valid), file: "f")
        func manual(_ name: String) -> String {
            ManualCommand.ssh(for: config.tunnel(named: name)!, knownHostsFile: "/s/tunnels/\(name)/known_hosts", sshConfig: "/s/tunnels/\(name)/ssh_config")
        }
        // The bastion's key is checked as the generated ssh_config checks it: the
        // tunnel's known_hosts under warren's alias, no prompt, no global file.
        #expect(manual("local") ==
            "ssh -v -N -o ExitOnForwardFailure=yes -o IdentitiesOnly=yes -i /keys/id -o HostKeyAlias=warren-local -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/s/tunnels/local/known_hosts -o GlobalKnownHostsFile=/dev/null -L 127.0.0.1:15432:db.internal:5432 -L '[::1]:15433:db.internal:5432' tunnel@bastion.example.com")
        // Jump hops through the generated ssh_config, where each is pinned too (-J would use ~/.ssh/known_hosts).
        #expect(manual("jumped").contains(" -o 'ProxyCommand=ssh -F /s/tunnels/jumped/ssh_config -W [%h]:%p warren-jumped-jump2' "), "\(manual("jumped"))")
        #expect(!manual("jumped").contains(" -J "))
        #expect(manual("remote").contains(" -p 2222 -o HostKeyAlias=warren-remote "))
        #expect(manual("remote").contains(" -R 127.0.0.1:8080:localhost:80 -R 9090 "))
        #expect(ManualCommand.shellQuoted("it's") == "'it'\\''s'")
        #expect(ManualCommand.shellQuoted("*:1080") == "'*:1080'")
    }
}
