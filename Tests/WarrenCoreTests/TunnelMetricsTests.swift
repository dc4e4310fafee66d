import Testing
import WarrenCore
import WarrenTestSupport

/// Metrics derived from a stream of status changes, rendered as Prometheus text.
struct TunnelMetricsTests {
    static func status(_ name: String, _ state: TunnelState, _ kind: FailureKind? = nil) -> TunnelStatus {
        TunnelStatus(name: name, state: state, since: "t", pid: nil, restarts: 0, forwards: [],
                     lastError: kind.map { TunnelError(kind: $0, message: "m") }, nextRetry: nil)
    }

    /// Feeds one state per step for tunnel `name`, 0.25 s (monotonic) and 10 s (wall) apart.
    static func replay(_ steps: [(TunnelState, FailureKind?)], name: String = "db") -> TunnelMetrics {
        var metrics = TunnelMetrics(startedAt: 1_000)
        for (index, step) in steps.enumerated() {
            metrics.observe([name: status(name, step.0, step.1)], wallClock: 1_000 + Double(index) * 10, monotonic: Double(index) * 0.25)
        }
        return metrics
    }

    @Test func restartsAreCountedByTheKindThatEndedTheRun() throws {
        let metrics = Self.replay([
            (.starting, nil), (.connecting, nil), (.backoff, .connectionRefused),
            (.starting, .connectionRefused), (.connecting, .connectionRefused), (.up, nil),
            (.degraded, .targetUnreachable), (.backoff, .connectionLost),
            (.starting, .connectionLost), (.connecting, .connectionLost), (.failed, .authFailed),
        ])
        let text = try PrometheusExposition.parse(metrics.render())
        #expect(text.value("warren_tunnel_restarts_total", ["tunnel": "db", "kind": "connection_refused"]) == 1)
        #expect(text.value("warren_tunnel_restarts_total", ["tunnel": "db", "kind": "connection_lost"]) == 1)
        #expect(text.value("warren_tunnel_restarts_total", ["tunnel": "db", "kind": "auth_failed"]) == 1)
        #expect(text.value("warren_tunnel_restarts_total", ["tunnel": "db", "kind": "dns_failure"]) == 0, "every kind starts at 0")
        #expect(text.value("warren_tunnel_state", ["tunnel": "db", "state": "failed"]) == 1)
        #expect(text.value("warren_tunnel_state", ["tunnel": "db", "state": "up"]) == 0)
        #expect(text.value("warren_tunnel_up", ["tunnel": "db"]) == 0)
        #expect(text.value("warren_tunnel_last_state_change_timestamp_seconds", ["tunnel": "db"]) == 1_100)
    }

    @Test func timeToConnectIsFromSpawnToUp() throws {
        // connecting at step 1 (0.25 s), up at step 3 (0.75 s): 0.5 s.
        let metrics = Self.replay([(.starting, nil), (.connecting, nil), (.connecting, nil), (.up, nil)])
        let text = try PrometheusExposition.parse(metrics.render())
        #expect(text.value("warren_tunnel_connect_seconds", ["tunnel": "db"]) == 0.5)
        #expect(text.value("warren_tunnel_connect_duration_seconds_count", ["tunnel": "db"]) == 1)
        #expect(text.value("warren_tunnel_connect_duration_seconds_bucket", ["tunnel": "db", "le": "0.25"]) == 0)
        #expect(text.value("warren_tunnel_connect_duration_seconds_bucket", ["tunnel": "db", "le": "0.5"]) == 1)
        #expect(text.value("warren_tunnel_connect_duration_seconds_bucket", ["tunnel": "db", "le": "+Inf"]) == 1)
        #expect(text.value("warren_tunnel_up", ["tunnel": "db"]) == 1)
    }

    @Test func aTunnelThatNeverConnectedHasNoConnectTime() throws {
        let text = try PrometheusExposition.parse(Self.replay([(.starting, nil), (.connecting, nil), (.backoff, .connectTimeout)]).render())
        #expect(text.value("warren_tunnel_connect_seconds", ["tunnel": "db"]) == nil)
        #expect(text.value("warren_tunnel_connect_duration_seconds_count", ["tunnel": "db"]) == 0)
    }

    @Test func everyFamilyHasHelpAndTypeAndUsesTheWarrenPrefix() throws {
        var metrics = Self.replay([(.starting, nil), (.connecting, nil), (.up, nil)])
        metrics.observe(["db": Self.status("db", .up), "other": Self.status("other", .stopped)], wallClock: 2_000, monotonic: 9)
        let text = try PrometheusExposition.parse(metrics.render())
        for family in text.order {
            #expect(family.hasPrefix("warren_"))
            #expect(!text.families[family]!.help.isEmpty)
            #expect(text.families[family]!.type != "untyped")
        }
        #expect(Set(text.order) == [
            "warren_tunnel_up", "warren_tunnel_state", "warren_tunnel_restarts_total", "warren_tunnel_connect_seconds",
            "warren_tunnel_connect_duration_seconds", "warren_tunnel_last_state_change_timestamp_seconds",
            "warren_supervisor_start_time_seconds", "warren_tunnel_connections_total", "warren_tunnel_connections_open",
            "warren_tunnel_channel_open_failures_total", "warren_tunnel_connections_waited_total",
            "warren_tunnel_connections_dropped_total", "warren_tunnel_probes_total", "warren_tunnel_probe_failures_total",
            "warren_tunnel_host_key_checked",
            "warren_tunnel_idle_closes_total", "warren_tunnel_idle_close_seconds",
            "warren_tunnel_certificate_expiry_timestamp_seconds",
            "warren_tunnel_certificate_renewal_success", "warren_tunnel_certificate_renewal_timestamp_seconds",
        ])
        #expect(text.families["warren_tunnel_state"]!.samples.count == 2 * TunnelState.allCases.count)
        #expect(text.value("warren_tunnel_state", ["tunnel": "other", "state": "stopped"]) == 1)
        #expect(text.value("warren_supervisor_start_time_seconds") == 1_000)
    }

    @Test func removedTunnelsDisappearAndStopAllStopsTheRest() throws {
        var metrics = Self.replay([(.starting, nil), (.connecting, nil), (.up, nil)])
        metrics.observe(["db": Self.status("db", .up), "new": Self.status("new", .starting)], wallClock: 2_000, monotonic: 9)
        metrics.observe(["new": Self.status("new", .connecting)], wallClock: 2_010, monotonic: 10)
        metrics.stopAll(wallClock: 2_020)
        let text = try PrometheusExposition.parse(metrics.render())
        #expect(text.value("warren_tunnel_up", ["tunnel": "db"]) == nil)
        #expect(text.value("warren_tunnel_state", ["tunnel": "new", "state": "stopped"]) == 1)
        #expect(text.value("warren_tunnel_last_state_change_timestamp_seconds", ["tunnel": "new"]) == 2_020)
    }

    @Test(arguments: [
        ("plain", "plain"), ("a\"b", "a\\\"b"), ("back\\slash", "back\\\\slash"), ("two\nlines", "two\\nlines"),
    ])
    func labelValuesAreEscaped(_ raw: String, _ escaped: String) throws {
        #expect(PrometheusText.escapeLabel(raw) == escaped)
        var out = PrometheusText()
        out.family("warren_x", .gauge, help: "help with \\ and\nnewline")
        out.sample("warren_x", [("tunnel", raw)], 1.5)
        let parsed = try PrometheusExposition.parse(out.text)
        #expect(parsed.value("warren_x", ["tunnel": raw]) == 1.5, "the parser reads back what was written")
    }

    @Test(arguments: [(1.0, "1"), (0.25, "0.25"), (-3.0, "-3"), (Double.infinity, "+Inf"), (1e-7, "1e-07")])
    func valuesAreFormattedAsPrometheusReadsThem(_ value: Double, _ text: String) {
        #expect(PrometheusText.format(value) == text)
    }

    @Test(arguments: [
        "warren_x 1\n",  // no TYPE before the sample
        "# TYPE warren_x gauge\nwarren_x{a=\"1\"} 1\nwarren_x{a=\"1\"} 2\n",  // duplicate series
        "# TYPE warren_x gauge\nwarren_x{a=\"\\q\"} 1\n",  // bad escape
        "# TYPE warren_x gauge\nwarren_x one\n",  // bad value
        "# TYPE warren_x gauge\n# TYPE warren_y gauge\n# HELP warren_x late\n",  // scattered family
        "# TYPE warren_h histogram\nwarren_h_bucket{le=\"1\"} 2\nwarren_h_bucket{le=\"+Inf\"} 1\nwarren_h_sum 1\nwarren_h_count 1\n",  // not cumulative
    ])
    func theStrictParserRejectsBrokenText(_ text: String) {
        #expect(throws: FixtureError.self) { try PrometheusExposition.parse(text) }
    }

    @Test func connectionsAreCountedPerTunnelAndForward() throws {
        var metrics = TunnelMetrics(startedAt: 1_000)
        var status = Self.status("db", .up)
        status.connections = [ForwardConnections(forward: "L 127.0.0.1:15432:db:5432", total: 57, open: 2, failed: 1)]
        metrics.observe(["db": status], wallClock: 2_000, monotonic: 9)
        let text = try PrometheusExposition.parse(metrics.render())
        let labels = ["tunnel": "db", "forward": "L 127.0.0.1:15432:db:5432"]
        #expect(text.value("warren_tunnel_connections_total", labels) == 57)
        #expect(text.value("warren_tunnel_connections_open", labels) == 2)
        #expect(text.value("warren_tunnel_channel_open_failures_total", labels) == 1)
    }

    @Test func aRunThatEndsAndStartsAgainAtOnceIsARestart() {
        let metrics = Self.replay([(.starting, nil), (.connecting, nil), (.up, nil), (.starting, .connectionLost), (.connecting, nil), (.up, nil)])
        #expect(metrics.render().contains("warren_tunnel_restarts_total{tunnel=\"db\",kind=\"connection_lost\"} 1"))
    }
}
