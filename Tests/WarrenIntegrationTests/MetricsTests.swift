import Foundation
import Testing
import WarrenCore
import WarrenRuntime
import WarrenTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `warren run --metrics-file --metrics-listen`: Prometheus text that a strict
/// parser accepts, served over HTTP on loopback and written for node_exporter.
@Suite(.serialized)
struct MetricsTests {
    @Test func metricsAreServedOverHTTPAndWrittenToAFile() async throws {
        let lab = try Lab.conditions([.ok, .deg, .refused])
        defer { lab.stop() }
        let port = try FreePort.find()
        let file = lab.directory.appending("textfile/warren.prom")
        try FileManager.default.createDirectory(atPath: lab.directory.appending("textfile"), withIntermediateDirectories: true)
        let before = Date().timeIntervalSince1970
        try lab.startSupervisor(arguments: ["--metrics-file", file, "--metrics-listen", "127.0.0.1:\(port)"])
        let settled = lab.waitForStatus([
            .ok: { $0.state == .up },
            .deg: { $0.state == .degraded },
            .refused: { $0.restarts >= 1 },
        ])
        try #require(settled, "\(String(describing: lab.statusReport()))\n\(lab.supervisorLog())")

        let response = try HTTPClient.request(port: port, path: "/metrics")
        #expect(response.status == 200)
        #expect(response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        let served = try PrometheusExposition.parse(response.body)
        // Prometheus's own linter agrees, on a scrape with every kind of series.
        let linted = try await PromtoolTests.checkMetrics(response.body, in: lab.directory)
        #expect(linted.status == 0 && linted.stdout.isEmpty && linted.stderr.isEmpty, "promtool check metrics on a real scrape: \(linted)")
        #expect(served.value("warren_tunnel_up", ["tunnel": "ok"]) == 1)
        #expect(served.value("warren_tunnel_up", ["tunnel": "deg"]) == 0)
        #expect(served.value("warren_tunnel_up", ["tunnel": "refused"]) == 0)
        #expect(served.value("warren_tunnel_state", ["tunnel": "deg", "state": "degraded"]) == 1)
        #expect(served.value("warren_tunnel_state", ["tunnel": "ok", "state": "up"]) == 1)
        let restarts = try #require(served.value("warren_tunnel_restarts_total", ["tunnel": "refused", "kind": "connection_refused"]))
        #expect(restarts >= 1)
        #expect(served.value("warren_tunnel_restarts_total", ["tunnel": "ok", "kind": "connection_refused"]) == 0)
        let connect = try #require(served.value("warren_tunnel_connect_seconds", ["tunnel": "ok"]))
        #expect(connect > 0 && connect < 30, "time to connect \(connect) s")
        print("time to connect through the test sshd: \(connect) s")
        #expect(served.value("warren_tunnel_connect_seconds", ["tunnel": "refused"]) == nil, "never connected")
        #expect(served.value("warren_tunnel_connect_duration_seconds_count", ["tunnel": "ok"]) == 1)
        let changed = try #require(served.value("warren_tunnel_last_state_change_timestamp_seconds", ["tunnel": "deg"]))
        #expect(changed >= before - 1 && changed <= Date().timeIntervalSince1970 + 1)
        let started = try #require(served.value("warren_supervisor_start_time_seconds"))
        #expect(started >= before - 1 && started <= changed)

        let head = try HTTPClient.request("HEAD", port: port, path: "/metrics")
        #expect(head.status == 200 && head.body.isEmpty && Int(head.headers["content-length"] ?? "") ?? 0 > 0)
        #expect(try HTTPClient.request(port: port, path: "/").status == 404)
        #expect(try HTTPClient.request(port: port, path: "/metricsx").status == 404)
        let post = try HTTPClient.request("POST", port: port, path: "/metrics")
        #expect(post.status == 405 && post.headers["allow"] == "GET, HEAD")
        // A client that connects and says nothing does not stop the others.
        let silent = try TCPClient.connect(port: port)
        defer { close(silent) }
        #expect(try HTTPClient.request(port: port, path: "/metrics?x=1").status == 200)
        let health = try HTTPClient.request(port: port, path: "/healthz")
        #expect(health.status == 200 && health.body == "ok\n", "\(health)")

        // The textfile collector's file: complete, world-readable, same families.
        #expect(waitUntil(timeout: .seconds(5)) { (try? String(contentsOfFile: file, encoding: .utf8))?.contains("tunnel=\"deg\",state=\"degraded\"} 1") == true })
        let written = try PrometheusExposition.parse(try String(contentsOfFile: file, encoding: .utf8))
        #expect(written.order == served.order)
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        #expect(mode == 0o644)
        // A write in progress has its temporary file for a moment (the refused tunnel
        // keeps changing state); one that is left behind stays.
        var leftovers: [String] = []
        let clean = waitUntil(timeout: .seconds(5)) {
            leftovers = (try? FileManager.default.contentsOfDirectory(atPath: lab.directory.appending("textfile"))) ?? []
            return leftovers == ["warren.prom"]
        }
        #expect(clean, "no temporary files left where node_exporter looks: \(leftovers)")

        #expect(lab.stopSupervisor() == 0, "\(lab.supervisorLog())")
        #expect(!FreePort.isListening(port), "the metrics port is closed on exit")
        let final = try PrometheusExposition.parse(try String(contentsOfFile: file, encoding: .utf8))
        for tunnel in ["ok", "deg", "refused"] {
            #expect(final.value("warren_tunnel_state", ["tunnel": tunnel, "state": "stopped"]) == 1, "\(tunnel) is stopped in the final file")
            #expect(final.value("warren_tunnel_up", ["tunnel": tunnel]) == 0)
        }
        #expect(final.value("warren_tunnel_restarts_total", ["tunnel": "refused", "kind": "connection_refused"]) ?? 0 >= restarts, "counters survive into the final file")
    }

    @Test(arguments: [
        (["--metrics-listen", "0.0.0.0:9187"], "--metrics-allow-remote"),
        (["--metrics-listen", "192.0.2.1:9187"], "--metrics-allow-remote"),
        (["--metrics-listen", "127.0.0.1:0"], "the port must be 1-65535"),
        (["--metrics-listen", "::1:9187"], "in brackets"),
        (["--metrics-listen", "metrics.example.com:9187"], "not a numeric IP address"),
        (["--metrics-allow-remote"], "needs --metrics-listen"),
    ])
    func badMetricsAddressesAreRefusedBeforeAnythingStarts(_ arguments: [String], _ message: String) async throws {
        try await withTemporaryDirectory(prefix: "mx-") { dir in
            let result = try await CommandRunner.warren(["run", "--config", dir.appending("none.toml"), "--state-dir", dir.appending("state")] + arguments)
            #expect(result.status == 64, "\(result)")
            #expect(result.stderr.contains(message), "\(result)")
            #expect(!FileManager.default.fileExists(atPath: dir.appending("state")))
        }
    }

    /// /healthz is the liveness probe's question: 503 with the reason once the
    /// supervisor stops answering (here: a server told so directly).
    @Test func healthzSaysWhyItIsUnhealthy() throws {
        let port = try FreePort.find()
        let server = try MetricsServer.start(
            MetricsServer.Address.parse("127.0.0.1:\(port)").get(), render: { "" },
            health: { .unhealthy("the supervisor has not answered for 31 s") })
        defer { server.stop() }
        let response = try HTTPClient.request(port: port, path: "/healthz")
        #expect(response.status == 503)
        #expect(response.body == "the supervisor has not answered for 31 s\n")
        #expect(try HTTPClient.request("HEAD", port: port, path: "/healthz").status == 503)
    }

    @Test func anUnwritableMetricsFileFailsTheStart() async throws {
        let lab = try Lab.conditions([.ok])
        defer { lab.stop() }
        let warren = try lab.startSupervisor(arguments: ["--metrics-file", lab.directory.appending("missing-dir/warren.prom")])
        #expect(warren.process.waitForExit(timeout: .seconds(15)) == 1, "\(lab.supervisorLog())")
        #expect(lab.supervisorLog().contains("cannot write metrics to \(lab.directory.appending("missing-dir/warren.prom"))"))
        #expect(lab.sshProcesses().isEmpty)
    }

    @Test func aTakenMetricsPortKeepsTheTunnelsRunningAndIsRetried() async throws {
        let lab = try Lab.conditions([.ok])
        defer { lab.stop() }
        let squatter = try lab.startTarget()
        let port = squatter.port
        try lab.startSupervisor(arguments: ["--metrics-listen", "127.0.0.1:\(port)"])
        try #require(lab.waitForStatus([.ok: { $0.state == .up }]), "the tunnel comes up regardless: \(lab.supervisorLog())")
        #expect(lab.supervisorLog().contains("cannot listen on 127.0.0.1:\(port) for metrics"))
        #expect(lab.supervisorLog().contains("the tunnels keep running"))
        squatter.stop()
        let served = waitUntil(timeout: .seconds(20)) { (try? HTTPClient.request(port: port, path: "/metrics"))?.status == 200 }
        #expect(served, "the bind is retried once the port is free: \(lab.supervisorLog())")
        #expect(lab.supervisorLog().contains("serving metrics on 127.0.0.1:\(port)"))
    }
}
