#!/usr/bin/env python3
"""warren side by side with autossh and bare ssh: `make bench` (`QUICK=1` for a
short run). One sshd on 127.0.0.1 plays the bastion for every tool, one echo
server the database behind it; every tool runs ssh on the same generated
ssh_config (`warren render`), so only supervision differs. Prints a table of
medians and ratios and writes it, with every sample, to
bench-results/bench-<timestamp>.json. See bench/README.md for what each figure
means. Needs root (sshd, apt-get). Stdlib only."""

import argparse
import atexit
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import procs  # noqa: E402
from net import Held, ReadyPoller, echo_once, free_ports, serve_echo, wait_echo  # noqa: E402
from procs import Procs, alive, cpu_ticks, memory_kb, wait_until, CLK_TCK  # noqa: E402
from fixtures import ROOT, Bastion, Fleet, build_warren, ensure_packages, log, without_keepalive  # noqa: E402
from tools import AUTOSSH_ENV, Autossh, BareSSH, Warren  # noqa: E402
import clients  # noqa: E402
import scale  # noqa: E402

SECTIONS = ["ready", "recovery", "clients", "halfdead", "footprint", "reload"]
# Run only when asked (--only scale, make bench-scale): N tunnels over M sshd (bench/scale.py).
EXTRA_SECTIONS = ["scale"]
# reload runs before footprint: its 50-tunnel runs also give the 50-tunnel footprint.
RUN_ORDER = ["ready", "recovery", "clients", "halfdead", "reload", "footprint", "scale"]


class Interrupted(Exception):
    pass


def _on_signal(number, _frame):
    raise Interrupted(f"signal {number}")


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def p90(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.procs = Procs()
        self.workspace = tempfile.mkdtemp(prefix="wb-", dir="/tmp")
        self.rows = []
        self.raw = {}
        self.notes = []
        self.cleaned = False
        self.teardown_wait = 0.0
        self.sections = SECTIONS
        self.port_range = tuple(int(x) for x in args.ports.split("-"))

    # ------------------------------------------------------------ plumbing

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        self.procs.cleanup()
        if self.args.keep:
            log(f"kept {self.workspace}")
        else:
            shutil.rmtree(self.workspace, ignore_errors=True)

    def row(self, section, metric, unit, warren, autossh, floor=None, note=""):
        self.rows.append({"section": section, "metric": metric, "unit": unit,
                          "warren": warren, "autossh": autossh, "floor": floor, "note": note})

    def between(self):
        """After a tool stops: wait until the bastion has no connection left and
        reap everything, so one tool's teardown does not load the next."""
        began = time.monotonic()
        self.procs.forget_exited()
        self.bastion.wait_idle()
        self.procs.reap_orphans()
        self.teardown_wait += time.monotonic() - began

    def wait_ready(self, tool, ports, timeout):
        """Starts the tool and waits until every port passes an echo. The floor
        has no supervisor: the bench restarts its ssh that exit meanwhile (sshd's
        MaxStartups drops some of many simultaneous connects)."""
        tick = self.floor_tick(tool, tool.fleet) if isinstance(tool, BareSSH) else None
        t0 = time.monotonic()
        tool.start()
        done = ReadyPoller().run(ports, timeout, tick=tick)
        per = sorted(t - t0 for t in done.values())
        return {"up": len(done), "of": len(ports), "seconds": per[-1] if len(done) == len(ports) else None,
                "median_tunnel": median(per), "restarts": tool.restarts()}

    def floor_tick(self, tool, fleet):
        names = {fleet.port(n): n for n in tool.names}
        return lambda pending: tool.respawn_exited([names[p] for p in pending])

    # --------------------------------------------------------------- set-up

    def setup(self):
        ensure_packages()
        if os.geteuid() != 0:
            sys.exit("bench: sshd needs root; run as root")
        self.warren = build_warren(self.workspace)
        self.n_max = 200 if set(self.sections) - {"scale"} else 0
        ports = free_ports(self.n_max + 2, start=self.port_range[0], end=self.port_range[1])
        self.used_ports = ports
        self.sshd_port, self.echo_port, self.tunnel_ports = ports[0], ports[1], ports[2:]
        self.bastion = Bastion(self.procs, self.workspace, self.sshd_port)
        self.bastion.start()
        self.echo = self.procs.spawn([sys.executable, os.path.abspath(__file__), "--echo-server", str(self.echo_port)],
                                     log=os.path.join(self.workspace, "echo.log"))
        if not wait_until(lambda: echo_once(self.echo_port, 0.2), 10, 0.02):
            raise RuntimeError("the echo server did not start")
        self.fleet = Fleet(self.warren, self.bastion, self.echo_port, self.workspace, "fleet", self.tunnel_ports)
        log(f"bastion sshd on 127.0.0.1:{self.sshd_port}, echo on :{self.echo_port}; rendering {self.n_max} tunnels")
        if self.n_max:
            self.fleet.render()

    # ----------------------------------------------------------------- ready

    def section_ready(self):
        reps1 = 3 if self.quick else 10
        reps50 = 1 if self.quick else 3
        result = {}
        for n, reps in ((1, reps1), (50, reps50)):
            ports = self.fleet.ports[:n]
            samples = {"warren": [], "autossh": [], "ssh": []}
            # One untimed round first (page cache, sshd's first fork).
            for rep in range(-1 if n == 1 and not self.quick else 0, reps):
                for make in (Warren, Autossh, BareSSH):
                    tool = make(self, self.fleet, n, f"ready{n}-{rep}")
                    r = self.wait_ready(tool, ports, timeout=120)
                    tool.stop()
                    self.between()
                    if rep >= 0:
                        samples[tool.label].append(r)
                if rep >= 0:
                    log(f"ready {n}: round {rep + 1}/{reps}: " + ", ".join(
                        f"{k} {_fmt_s(v[-1]['seconds'])}" for k, v in samples.items()))
            result[n] = samples
            m = {k: median(s["seconds"] for s in v) for k, v in samples.items()}
            self.row("ready", f"time to ready, {n} tunnel{'s' if n > 1 else ''} (median of {reps})", "s",
                     m["warren"], m["autossh"], m["ssh"],
                     note=self._ready_note(samples))
        self.raw["ready"] = result

    @staticmethod
    def _ready_note(samples):
        parts = []
        for k, v in samples.items():
            restarts = sum(s["restarts"] for s in v)
            short = [s for s in v if s["up"] < s["of"]]
            if restarts:
                parts.append(f"{k}: {restarts} ssh restart{'s' if restarts > 1 else ''} in {len(v)} run{'s' if len(v) > 1 else ''}")
            if short:
                parts.append(f"{k}: {len(short)} run(s) not all up")
        return "; ".join(parts)

    # -------------------------------------------------------------- recovery

    def section_recovery(self):
        reps = 5 if self.quick else 20
        ports = self.fleet.ports[:reps]
        result = {}
        for kind in ("kill", "drop"):
            result[kind] = {}
            for make in (Warren, Autossh, BareSSH):
                tool = make(self, self.fleet, reps, f"rec-{kind}")
                r = self.wait_ready(tool, ports, timeout=60)
                if r["up"] != reps:
                    raise RuntimeError(f"recovery: {tool.label}: only {r['up']} of {reps} tunnels came up")
                time.sleep(0.5)
                samples, outcomes = [], []
                for name in tool.names:
                    port = self.fleet.port(name)
                    pid = tool.ssh_pid(name)
                    session = self.bastion.session_of(pid) if kind == "drop" else None
                    if not pid or (kind == "drop" and not session) or not echo_once(port):
                        raise RuntimeError(f"recovery: {tool.label} {name} is not up (pid {pid}, session {session})")
                    t0 = time.monotonic()
                    if kind == "kill":
                        os.kill(pid, signal.SIGKILL)
                    else:
                        self.bastion.drop(session)
                    if make is BareSSH:
                        tool.start([name])  # the floor: a fresh ssh at once
                    give_up = (lambda n=name: tool.exited(n)) if make is Autossh else None
                    t = wait_echo(port, 10 if self.quick else 20, give_up=give_up)
                    if t is not None:
                        samples.append(t - t0)
                        outcomes.append("recovered")
                    else:
                        samples.append(None)
                        outcomes.append("supervisor exited" if give_up and give_up() else "timeout")
                    time.sleep(0.2)
                    self.procs.forget_exited()
                tool.stop()
                self.between()
                result[kind][tool.label] = {"seconds": samples, "outcomes": outcomes}
                log(f"recovery ({kind}): {tool.label}: median {_fmt_s(median(samples))}, "
                    f"{outcomes.count('recovered')}/{len(outcomes)} recovered")
            what = "kill -9 of the ssh child" if kind == "kill" else "bastion drops the session"
            for stat_name, fn in (("median", median), ("p90", p90)):
                values = {}
                for label, r in result[kind].items():
                    ok = r["outcomes"].count("recovered")
                    values[label] = fn(r["seconds"]) if ok == len(r["outcomes"]) else (
                        "never" if ok == 0 else f"{ok}/{len(r['outcomes'])} recovered")
                note = ""
                a = result[kind]["autossh"]["outcomes"]
                if stat_name == "median" and "supervisor exited" in a:
                    note = "autossh exits when its ssh dies of SIGKILL (its log: \"ssh exited on signal 9; parent exiting\")"
                self.row("recovery", f"recovery after {what}, {stat_name} of {reps}", "s",
                         values["warren"], values["autossh"], values["ssh"], note=note)
        self.raw["recovery"] = result

    # -------------------------------------------------------------- half-dead

    def section_halfdead(self):
        keepalive = (1, 2) if self.quick else (15, 3)
        # ssh sends a keepalive after ServerAliveInterval seconds without input
        # and gives up when CountMax of them in a row went unanswered: just
        # before the freeze, an echo through every tunnel gives each ssh fresh
        # input, so detection is expected interval x (count + 1) after it, less
        # up to a second (ssh keeps that clock in whole seconds). Several tunnels
        # per tool, frozen at once.
        count = 4 if self.quick else 10
        fleet = Fleet(self.warren, self.bastion, self.echo_port, self.workspace, "halfdead",
                      self.tunnel_ports[:count + 1], keepalive=keepalive)
        fleet.render()
        window = keepalive[0] * (keepalive[1] + 1)
        expected = keepalive[0] * (keepalive[1] + 1)
        result = {"keepalive_interval": keepalive[0], "keepalive_count": keepalive[1],
                  "expected_detection": [expected - 1, expected], "tools": {}}
        for make in (Warren, Autossh, BareSSH):
            tool = make(self, fleet, count, "halfdead")
            result["tools"][tool.label] = self.halfdead_run(make, tool, fleet, count, window)
            tool.stop()
            self.between()
        self.raw["halfdead"] = result
        t = result["tools"]
        setting = f"ServerAliveInterval {keepalive[0]}, CountMax {keepalive[1]}"
        self.row("half-dead", f"half-dead bastion: detected (ssh exits), median of {count}", "s",
                 median(t["warren"]["detected"]), median(t["autossh"]["detected"]), median(t["ssh"]["detected"]),
                 note=f"{setting} for all three" + (" (lowered for --quick)" if self.quick else " (warren's defaults)")
                 + f"; expected {expected - 1:g} to {expected:g} s after the last traffic")
        self.row("half-dead", "half-dead bastion: passes data again", "s",
                 median(t["warren"]["recovered"]), median(t["autossh"]["recovered"]), median(t["ssh"]["recovered"]),
                 note=f"warren's status left 'up' at {_fmt_s(median(t['warren']['status_left_up']))}")
        self.row("half-dead", "half-dead bastion: from detection to passing data", "s",
                 median(t["warren"]["back_after_detection"]), median(t["autossh"]["back_after_detection"]),
                 median(t["ssh"]["back_after_detection"]),
                 note="the supervisor's own part: noticing the exit, restarting, ssh connecting")
        nk = t["autossh"]["no_keepalive"]
        self.row("half-dead", "half-dead: autossh -M 0 with ssh's own defaults (no ServerAlive)", "s",
                 None, nk["detected"] if nk["detected"] is not None else f"not within {nk['watched_for']:.0f} s",
                 note="what autossh -M 0 does unless the user sets ServerAliveInterval")

    def halfdead_run(self, make, tool, fleet, count, window):
        """One tool's half-dead run: bring `count` tunnels up, pass data, freeze
        every session on the bastion at once, and time detection (ssh exits)
        and recovery (data passes again)."""
        extra = None
        r = self.wait_ready(tool, fleet.ports[:count], timeout=60)
        if make is Autossh:
            # Alongside: autossh on the same file less its ServerAlive lines (ssh's own default).
            name = fleet.names[count]
            cfg = without_keepalive(fleet.configs[name], os.path.join(fleet.dir, "no-keepalive.ssh_config"))
            extra = Autossh(self, fleet, 0, "halfdead-nokeepalive", configs={name: cfg})
            extra.names = [name]
            extra.start()
            if not wait_echo(fleet.port(name), 30):
                raise RuntimeError("half-dead: autossh without keepalive did not come up")
        if r["up"] != count:
            raise RuntimeError(f"half-dead: {tool.label}: only {r['up']} of {count} came up")
        time.sleep(1)
        watched = list(tool.names) + (extra.names if extra else [])
        owner = {n: (extra if extra and n in extra.names else tool) for n in watched}
        pids = {n: owner[n].ssh_pid(n) for n in watched}
        sessions = {n: self.bastion.session_of(pids[n]) for n in watched}
        if not all(sessions.values()):
            raise RuntimeError(f"half-dead: sessions not found: {sessions}")
        # Traffic through every tunnel just before the freeze: every ssh has
        # just heard from the server, which restarts its keepalive clock.
        for n in watched:
            if not echo_once(fleet.port(n)):
                raise RuntimeError(f"half-dead: {n} does not pass data before the freeze")
        frozen = []
        t0 = time.monotonic()
        for n in watched:
            frozen += self.bastion.freeze(sessions[n])
        detected, recovered, left_up = {}, {}, {}
        deadline = t0 + window + (10 if self.quick else 30)
        try:
            while time.monotonic() < deadline and len(recovered) < len(tool.names):
                now = time.monotonic()
                if make is Warren:
                    status = tool.status()
                for n in watched:
                    if n not in detected and not alive(pids[n]):
                        detected[n] = now - t0
                        if make is BareSSH:
                            tool.start([n])  # the floor: a fresh ssh at once
                    if make is Warren and n not in left_up:
                        st = status.get(n)
                        if st and (st.get("state") not in ("up", "degraded") or st.get("pid") != pids[n]):
                            left_up[n] = now - t0
                    if n in detected and n not in recovered and echo_once(fleet.port(n), 0.3):
                        recovered[n] = time.monotonic() - t0
                time.sleep(0.01)
            waited = time.monotonic() - t0
        finally:
            self.bastion.thaw(frozen)
        for n in tool.names:
            if n not in recovered:
                log(f"half-dead: {tool.label} {n} not recovered within {waited:.0f} s")
        entry = {"detected": [detected.get(n) for n in tool.names],
                 "recovered": [recovered.get(n) for n in tool.names],
                 "back_after_detection": [recovered[n] - detected[n] if n in recovered and n in detected else None
                                          for n in tool.names]}
        if make is Warren:
            entry["status_left_up"] = [left_up.get(n) for n in tool.names]
        if extra:
            n = extra.names[0]
            entry["no_keepalive"] = {"detected": detected.get(n), "watched_for": waited}
            extra.stop()
        log(f"half-dead: {tool.label}: detected {_fmt_s(median(entry['detected']))}, "
            f"recovered {_fmt_s(median(entry['recovered']))}")
        return entry

    # -------------------------------------------------------------- footprint

    @property
    def idle_window(self):
        return 5 if self.quick else 60

    def measure_footprint(self, tool, n, r):
        """After the tool's n tunnels are up (`r` from wait_ready): a calm
        moment, then CPU over the idle window and memory at its end."""
        idle, settle = self.idle_window, (1 if self.quick else 5)
        time.sleep(settle)
        sup, kids = tool.supervisor_pids(), tool.child_pids()
        c0 = (sum(map(cpu_ticks, sup)), sum(map(cpu_ticks, kids)))
        t0 = time.monotonic()
        time.sleep(idle)
        elapsed = time.monotonic() - t0
        c1 = (sum(map(cpu_ticks, sup)), sum(map(cpu_ticks, kids)))
        mem_sup = [memory_kb(p) for p in sup]
        mem_kids = [memory_kb(p) for p in kids]
        entry = {
            "up": r["up"], "ready_seconds": r["seconds"], "restarts_during_start": r["restarts"],
            "supervisor_processes": len(sup), "ssh_processes": len(kids), "idle_seconds": elapsed,
            "supervisor_rss_kb": sum(m["rss"] or 0 for m in mem_sup),
            "supervisor_pss_kb": sum(m["pss"] or 0 for m in mem_sup),
            "supervisor_threads": sum(m["threads"] or 0 for m in mem_sup),
            "supervisor_cpu_percent": 100.0 * (c1[0] - c0[0]) / CLK_TCK / elapsed,
            "ssh_rss_kb": sum(m["rss"] or 0 for m in mem_kids),
            "ssh_pss_kb": sum(m["pss"] or 0 for m in mem_kids),
            "ssh_cpu_percent": 100.0 * (c1[1] - c0[1]) / CLK_TCK / elapsed,
        }
        self.raw.setdefault("footprint", {}).setdefault(n, {})[tool.label] = entry
        log(f"footprint {n}: {tool.label}: {r['up']}/{n} up in {_fmt_s(r['seconds'])}, {r['restarts']} restarts; "
            f"supervisor RSS {entry['supervisor_rss_kb'] / 1024:.1f} MB "
            f"PSS {entry['supervisor_pss_kb'] / 1024:.1f} MB CPU {entry['supervisor_cpu_percent']:.2f} %; "
            f"ssh RSS {entry['ssh_rss_kb'] / 1024:.1f} MB CPU {entry['ssh_cpu_percent']:.2f} %")

    def section_footprint(self):
        """50 and 200 tunnels. The 50-tunnel figures come from the reload
        section's runs when it runs too (the same 50 tunnels, measured before
        anything is changed), so that each tool starts 50 tunnels once."""
        for n in (50, 200):
            for make in (Warren, Autossh):
                if make.label in self.raw.get("footprint", {}).get(n, {}):
                    continue
                tool = make(self, self.fleet, n, f"footprint{n}")
                r = self.wait_ready(tool, self.fleet.ports[:n], timeout=120 if self.quick else 240)
                self.measure_footprint(tool, n, r)
                tool.stop()
                self.between()
        self.footprint_rows()

    def footprint_rows(self):
        idle = self.idle_window
        for n, result in sorted(self.raw.get("footprint", {}).items()):
            w, a = result["warren"], result["autossh"]
            sec = f"footprint {n}"
            self.row(sec, f"{n} tunnels: all up after (cold start, default MaxStartups)", "s",
                     w["ready_seconds"] if w["up"] == n else f"{w['up']}/{n} up",
                     a["ready_seconds"] if a["up"] == n else f"{a['up']}/{n} up",
                     note=f"ssh restarts while starting: warren {w['restarts_during_start']}, autossh {a['restarts_during_start']}")
            self.row(sec, f"{n} tunnels: supervisor RSS (autossh: sum of {a['supervisor_processes']})", "MB",
                     w["supervisor_rss_kb"] / 1024, a["supervisor_rss_kb"] / 1024)
            self.row(sec, f"{n} tunnels: supervisor PSS", "MB", w["supervisor_pss_kb"] / 1024, a["supervisor_pss_kb"] / 1024,
                     note="PSS divides shared pages (libc) among the processes sharing them")
            self.row(sec, f"{n} tunnels: supervisor CPU, {idle} s idle", "% of a core",
                     w["supervisor_cpu_percent"], a["supervisor_cpu_percent"],
                     note="warren probes every target through its forward every 30 s; autossh -M 0 does nothing"
                     + (" (the --quick window is shorter than one probe cycle)" if idle < 32 else ""))
            self.row(sec, f"{n} tunnels: ssh children RSS / PSS (sum)", "MB",
                     f"{w['ssh_rss_kb'] / 1024:.0f} / {w['ssh_pss_kb'] / 1024:.0f}",
                     f"{a['ssh_rss_kb'] / 1024:.0f} / {a['ssh_pss_kb'] / 1024:.0f}")
            self.row(sec, f"{n} tunnels: ssh children CPU, {idle} s idle", "% of a core",
                     w["ssh_cpu_percent"], a["ssh_cpu_percent"])

    # ----------------------------------------------------------------- reload

    def section_reload(self):
        n = 50
        ports = self.fleet.ports[:n]
        changed = self.fleet.names[n // 2]
        override = {changed: ["keepalive_interval = 20"]}
        new_config = self.fleet.render([changed], config=self.fleet.write_config(
            n, override, path=os.path.join(self.fleet.dir, "reload-new.toml")),
            state_dir=os.path.join(self.fleet.dir, "rendered-reload"))[changed]
        result = {"changed": changed, "change": override[changed][0]}
        for make in (Warren, Autossh):
            tag = "reload"
            config = self.fleet.write_config(n, path=os.path.join(self.fleet.dir, "reload.toml")) if make is Warren else None
            tool = make(self, self.fleet, n, tag, **({"config": config} if config else {}))
            r = self.wait_ready(tool, ports, timeout=120)
            if r["up"] != n:
                raise RuntimeError(f"reload: {tool.label}: only {r['up']} of {n} came up")
            if "footprint" in self.sections:
                self.measure_footprint(tool, n, r)
            time.sleep(1)
            held = {name: Held(self.fleet.port(name)) for name in tool.names}
            if not all(h.roundtrip() for h in held.values()):
                raise RuntimeError("reload: a held connection failed before the change")
            before = tool.ssh_pids()
            if make is Warren:
                self.fleet.write_config(n, override, path=config)
                t0 = time.monotonic()
                tool.reload()
            else:
                t0 = time.monotonic()
                tool.restart(changed, new_config)
            port = self.fleet.port(changed)
            ok = wait_until(lambda: tool.ssh_pid(changed) not in (None, before[changed]) and echo_once(port, 0.5), 30, 0.005)
            serving = time.monotonic() - t0 if ok else None
            time.sleep(1.5)
            after = tool.ssh_pids()
            restarted = sorted(name for name in tool.names if after.get(name) != before.get(name))
            dropped = sorted(name for name, h in held.items() if not h.roundtrip())
            for h in held.values():
                h.close()
            with open(os.path.join(self.fleet.dir, "rendered-reload", "tunnels", changed, "ssh_config")) as f:
                assert "ServerAliveInterval 20" in f.read()
            result[tool.label] = {"restarted": restarted, "dropped": dropped, "changed_serving_after": serving}
            log(f"reload: {tool.label}: restarted {restarted}, dropped {dropped}, {changed} serving after {_fmt_s(serving)}")
            tool.stop()
            self.between()
        self.raw["reload"] = result
        w, a = result["warren"], result["autossh"]
        self.row("reload", f"reload changing 1 of {n}: ssh processes restarted", "count", len(w["restarted"]), len(a["restarted"]), 1,
                 note="autossh has no reload: its equivalent is restarting that tunnel's autossh; floor: the changed one must reconnect")
        self.row("reload", f"reload changing 1 of {n}: held connections dropped", "count", len(w["dropped"]), len(a["dropped"]), 1,
                 note="one open connection through every tunnel")
        self.row("reload", "reload: changed tunnel passes data again after", "s",
                 w["changed_serving_after"], a["changed_serving_after"],
                 note="warren: from SIGHUP; autossh: from SIGTERM to the old autossh")

    # ----------------------------------------------------------------- scale

    def section_scale(self):
        scale.section_scale(self)

    def section_clients(self):
        clients.section_clients(self)

    # ------------------------------------------------------------------ report

    def report(self, started, load_before):
        elapsed = time.monotonic() - started
        load_after = loadavg()
        meta = {
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": self.quick,
            "seconds": round(elapsed, 1),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "ssh": subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip(),
            "autossh": subprocess.run(["autossh", "-V"], capture_output=True, text=True).stdout.strip(),
            "autossh_env": AUTOSSH_ENV,
            "warren_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                            capture_output=True, text=True).stdout.strip(),
            "sshd": "one /usr/sbin/sshd on 127.0.0.1, default MaxStartups (10:30:100), shared by all tools",
        }
        order = {"ready": 0, "recovery": 1, "clients": 1.5, "half-dead": 2, "reload": 4, f"scale {self.args.scale_tunnels}x{self.args.scale_bastions}": 5}
        self.rows.sort(key=lambda r: order.get(r["section"], 3))  # stable: footprint rows stay in order
        for r in self.rows:
            r["warren/autossh"] = _ratio(r["warren"], r["autossh"])
            r["warren/floor"] = _ratio(r["warren"], r["floor"])
        text = render_table(self.rows, meta)
        print(text)
        out_dir = os.path.join(ROOT, "bench-results")
        os.makedirs(out_dir, exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = os.path.join(out_dir, f"bench-{stamp}{'-quick' if self.quick else ''}.json")
        with open(path, "w") as f:
            json.dump({"meta": meta, "rows": self.rows, "raw": self.raw}, f, indent=2, default=str)
        print(f"\nwritten: {os.path.relpath(path, os.getcwd())}")


def _ratio(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and b:
        return a / b
    return None


def _fmt_s(x):
    return f"{x:.3f} s" if isinstance(x, (int, float)) else "-"


def _fmt(value, unit):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit.startswith("%"):
        return f"{value:.2f} %"
    return f"{value:g}"


def render_table(rows, meta):
    head = ["metric", "warren", "autossh", "floor (ssh)", "w/autossh", "w/floor"]
    lines = []
    body = []
    for r in rows:
        body.append([r["metric"], _fmt(r["warren"], r["unit"]), _fmt(r["autossh"], r["unit"]),
                     _fmt(r["floor"], r["unit"]),
                     f"{r['warren/autossh']:.2f}" if r["warren/autossh"] is not None else "-",
                     f"{r['warren/floor']:.2f}" if r["warren/floor"] is not None else "-"])
    widths = [max(len(x[i]) for x in body + [head]) for i in range(len(head))]

    def fmt(cells):
        return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells))

    lines.append(f"warren bench ({'QUICK, ' if meta['quick'] else ''}{meta['timestamp']}; {meta['cpus']} cores; "
                 f"load {meta['loadavg_before'][0]:.2f} before, {meta['loadavg_after'][0]:.2f} after; "
                 f"{meta['seconds']:.0f} s; {meta['ssh']}; autossh {meta['autossh'].split()[-1]})")
    lines.append(fmt(head))
    lines.append("  ".join("-" * w for w in widths))
    section = None
    for r, cells in zip(rows, body):
        if section is not None and r["section"] != section:
            lines.append("")
        section = r["section"]
        lines.append(fmt(cells))
    notes = [(r["metric"], r["note"]) for r in rows if r["note"]]
    if notes:
        lines.append("")
        lines.append("notes (ratios < 1: warren is lower, i.e. better):")
        for metric, note in notes:
            lines.append(f"  {metric}: {note}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, shorter idle window, lower keepalive for half-dead")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"sections to run, comma-separated ({','.join(SECTIONS + EXTRA_SECTIONS)}; default all but scale)")
    parser.add_argument("--scale-tunnels", type=int, default=1000, help="scale: tunnels (default 1000)")
    parser.add_argument("--scale-bastions", type=int, default=50, help="scale: loopback sshd instances (default 50)")
    parser.add_argument("--ports", default="20000-32000", help="LOW-HIGH: the ports the bench may use (default 20000-32000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, configs)")
    parser.add_argument("--echo-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        serve_echo(args.echo_server)
        return
    sections = [s for s in args.only.split(",") if s]
    unknown = set(sections) - set(SECTIONS + EXTRA_SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    procs.set_child_subreaper()
    bench = Bench(args)
    atexit.register(bench.cleanup)
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _on_signal)
    started = time.monotonic()
    bench.sections = sections
    try:
        bench.setup()
        load_before = loadavg()
        log(f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
        started = time.monotonic()
        for section in RUN_ORDER:
            if section in sections:
                began = time.monotonic()
                getattr(bench, f"section_{section}")()
                log(f"{section}: {time.monotonic() - began:.0f} s")
        log(f"waiting for the bastion to drop connections between tools: {bench.teardown_wait:.0f} s in all")
        bench.report(started, load_before)
    except Interrupted as e:
        log(f"interrupted ({e}); cleaning up")
        sys.exit(130)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        bench.cleanup()


if __name__ == "__main__":
    main()
