"""`make bench-scale` (bench.py --only scale): N tunnels spread over M loopback
sshd instances, each one a "bastion" with sshd's default MaxStartups: warren
(one process, one ssh per tunnel), warren with `share_connection = true` (one
ssh master per bastion) and one `autossh -M 0` per tunnel. Per tool: time until
every forward passes data, MaxStartups drops in the sshd logs, and after a
calm moment the supervisor's idle CPU, wake-ups, RSS, PSS and threads, and the
ssh children's count and PSS; then kill -9 of an ssh (shared: of a master) and
the time until every tunnel it carried passes data again; then (warren only) a
reload adding one forward while connections through others stay open.
Issue 13; the lead runs 1000 over 50."""

import os
import re
import signal
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from fixtures import Bastion, log
from net import Held, ReadyPoller, echo_once, free_ports, wait_echo
from procs import CLK_TCK, alive, cpu_ticks, memory_kb, thread_files, wait_until
from tools import Autossh, Warren, is_master


class ScaleFleet:
    """N tunnels round-robin over the bastions, all to the one echo target:
    a warren.toml, and each tunnel's ssh_config as `warren render` writes it
    (autossh is given the same file)."""

    def __init__(self, bench, bastions, ports):
        self.bench = bench
        self.bastions = bastions
        self.ports = list(ports)
        self.names = [f"s{i:04d}" for i in range(len(self.ports))]
        self.dir = os.path.join(bench.workspace, "scale")
        os.makedirs(self.dir, exist_ok=True)
        self.configs = {}

    def bastion_of(self, index):
        return self.bastions[index % len(self.bastions)]

    def port(self, name):
        return self.ports[self.names.index(name)]

    def on_bastion(self, index):
        """The tunnels of bastion `index` (the ones a shared master carries)."""
        return self.names[index::len(self.bastions)]

    def forward(self, port):
        return f"127.0.0.1:{port}:127.0.0.1:{self.bench.echo_port}"

    def write_config(self, n=None, shared=False, extra=None, path=None):
        """warren.toml for every tunnel; `shared`: `share_connection = true` in
        [defaults]; `extra` maps a tunnel name to more local forward ports."""
        extra = extra or {}
        lines = [f'state_dir = "{self.dir}/state"', "", "[defaults]", 'user = "root"']
        if shared:
            lines.append("share_connection = true")
        for i, (name, port) in enumerate(zip(self.names, self.ports)):
            b = self.bastion_of(i)
            forwards = ", ".join(f'"{self.forward(p)}"' for p in [port] + extra.get(name, []))
            lines += ["", f"[tunnels.{name}]", 'host = "127.0.0.1"', f"port = {b.port}",
                      f'identity_file = "{b.client_key}"', f'host_key = "{b.host_key}"',
                      f"local_forward = [{forwards}]"]
        path = path or os.path.join(self.dir, "warren.toml")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
        return path

    def render(self):
        config = self.write_config()
        rendered = os.path.join(self.dir, "rendered")

        def one(name):
            out = subprocess.run([self.bench.warren, "render", name, "--config", config, "--state-dir", rendered],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"warren render {name} failed: {out.stderr}")
            return name, os.path.join(rendered, "tunnels", name, "ssh_config")

        with ThreadPoolExecutor(4) as pool:
            self.configs = dict(pool.map(one, self.names))


def maxstartups_drops(bastions, offsets):
    """Lines sshd logs for each connection it drops past MaxStartups, since `offsets`."""
    total = 0
    for b in bastions:
        with open(b.log, errors="replace") as f:
            f.seek(offsets.get(b.log, 0))
            total += sum(1 for line in f if "past MaxStartups" in line)
    return total


def log_offsets(bastions):
    return {b.log: os.path.getsize(b.log) for b in bastions}


def context_switches(pid):
    """{tid: voluntary + involuntary context switches} of every thread of
    `pid`: each wake-up of a sleeping thread is one."""
    return {(pid, tid): sum(int(line.split()[1]) for line in text.splitlines()
                            if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")))
            for tid, text in thread_files(pid, "status")}


def wakeups(pids):
    out = {}
    for pid in pids:
        out.update(context_switches(pid))
    return out


def wakeups_between(before, after):
    """Context switches in a window, per thread: a thread that ended in it
    takes its count along (summing whole processes then went negative), so
    only threads alive at the end count, from 0 if they started in it."""
    return sum(n - before.get(tid, 0) for tid, n in after.items())


def cpu_with_reaped(pid):
    """(own, reaped children's) CPU seconds of `pid`: utime+stime, and
    cutime+cstime (the children it has waited for: warren's short
    `ssh -O` runs, through setpriv and the guard shell)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, (int(fields[13]) + int(fields[14])) / CLK_TCK


def measure(bench, tool, fleet, bastions, timeout, idle, new_port):
    offsets = log_offsets(bastions)
    t0 = time.monotonic()
    tool.start()
    done = ReadyPoller(every=0.02).run(fleet.ports, timeout)
    start_cpu = [cpu_with_reaped(p) for p in tool.supervisor_pids()]
    ready = max(done.values()) - t0 if len(done) == len(fleet.ports) else None
    per = sorted(t - t0 for t in done.values())
    drops = maxstartups_drops(bastions, offsets)
    restarts = tool.restarts()
    collided = port_collisions(tool)
    time.sleep(5)
    sup, kids = tool.supervisor_pids(), tool.child_pids()
    c0, k0, w0 = sum(map(cpu_ticks, sup)), sum(map(cpu_ticks, kids)), wakeups(sup)
    began = time.monotonic()
    time.sleep(idle)
    elapsed = time.monotonic() - began
    c1, k1, w1 = sum(map(cpu_ticks, sup)), sum(map(cpu_ticks, kids)), wakeups(sup)
    mem = [memory_kb(p) for p in sup]
    mem_kids = [memory_kb(p) for p in kids]
    kills = kill_recoveries(tool, fleet, 3 if bench.quick else 5)
    reload = reload_adding_forward(tool, fleet, new_port) if isinstance(tool, Warren) else None
    return {
        "kill_recovery_seconds": kills,
        "reload": reload,
        "up": len(done), "of": len(fleet.ports), "ready_seconds": ready, "maxstartups_drops": drops,
        "start_cpu_seconds": sum(c[0] for c in start_cpu), "start_reaped_children_cpu_seconds": sum(c[1] for c in start_cpu),
        "first_tunnel_seconds": per[0] if per else None, "median_tunnel_seconds": statistics.median(per) if per else None,
        "p90_tunnel_seconds": per[int(0.9 * (len(per) - 1))] if per else None,
        "restarts_during_start": restarts, "idle_seconds": elapsed, "local_port_in_use_while_starting": collided,
        "supervisor_processes": len(sup),
        "supervisor_cpu_percent": 100.0 * (c1 - c0) / CLK_TCK / elapsed,
        "supervisor_wakeups_per_second": wakeups_between(w0, w1) / elapsed,
        "supervisor_rss_kb": sum(m["rss"] or 0 for m in mem),
        "supervisor_pss_kb": sum(m["pss"] or 0 for m in mem),
        "supervisor_threads": sum(m["threads"] or 0 for m in mem),
        "ssh_processes": len(kids),
        "ssh_pss_kb": sum(m["pss"] or 0 for m in mem_kids),
        "ssh_cpu_percent": 100.0 * (k1 - k0) / CLK_TCK / elapsed,
    }


def port_collisions(tool):
    """warren: the tunnels that failed with local_port_in_use so far (their
    port was taken by another socket after the bench picked it; see
    ephemeral_overlap). None for autossh (its ssh's words are not kept)."""
    if not isinstance(tool, Warren):
        return None
    try:
        with open(tool.log, errors="replace") as f:
            return len({m.group(1) for m in re.finditer(r"kind=local_port_in_use.* tunnel=(\S+)", f.read())})
    except OSError:
        return None


def ephemeral_overlap(low, high):
    """The part of LOW-HIGH inside the kernel's ephemeral range: every outgoing
    connection on the machine (ssh to its bastion, sshd to the target, probes)
    takes a local port from there, and holds it while connected and 60 s in
    TIME_WAIT after; a tunnel whose port is taken cannot bind until then."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            first, last = map(int, f.read().split())
    except (OSError, ValueError):
        return None
    lo, hi = max(low, first), min(high, last)
    return (lo, hi) if lo <= hi else None


def ephemeral_parity():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        return int(f.read().split()[0]) % 2


def kill_groups(tool, fleet, count):
    """What one kill -9 takes down, `count` times: one tunnel (one ssh per
    tunnel), or every tunnel of one bastion (shared: its master)."""
    if getattr(tool, "shared", False):
        m = len(fleet.bastions)
        return [fleet.on_bastion(i) for i in range(0, m, max(1, m // count))][:count]
    step = max(1, len(fleet.names) // count)
    return [[name] for name in fleet.names[::step][:count]]


def kill_recoveries(tool, fleet, count):
    """kill -9 of one ssh at a time (one tunnel's, or shared, one bastion's
    master), among all the others up: seconds until an echo has passed
    through every tunnel it carried again (None: not within 20 s)."""
    out = []
    for names in kill_groups(tool, fleet, count):
        ports = [fleet.port(name) for name in names]
        pid = tool.ssh_pid(names[0])
        if getattr(tool, "shared", False):
            everyone = tool.ssh_pids()
            pids = {everyone.get(name) for name in names}
            if pids != {pid} or not is_master(pid):
                log(f"scale: {tool.label}: the tunnels of one bastion report {sorted(map(str, pids))}, not one master")
                pid = None
        # A tunnel that does not pass data now (its port taken: see
        # ephemeral_overlap) is left out rather than failing the sample.
        ports = [port for port in ports if echo_once(port)]
        if len(ports) < len(names):
            log(f"scale: {tool.label}: {len(names) - len(ports)} of the {len(names)} tunnels on pid {pid} "
                "do not pass data before the kill; timing the others")
        if not pid or not ports:
            out.append(None)
            continue
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        # Until it is gone (a zombie), its listeners may still answer.
        wait_until(lambda: not alive(pid), 5, 0.0005)
        done = ReadyPoller(every=0.005).run(ports, 20)
        out.append(max(done.values()) - t0 if len(done) == len(ports) else None)
        time.sleep(0.3)
    return out


def held_tunnels(fleet, changed, count):
    """Where to hold `count` connections during the reload: two through the
    changed tunnel's existing forward, then alternately tunnels of its bastion
    (shared: of its master) and of the others."""
    b = fleet.names.index(changed) % len(fleet.bastions)
    same = [x for x in fleet.on_bastion(b) if x != changed]
    other = [x for x in fleet.names if x != changed and x not in same]
    mixed = [x for pair in zip(same, other) for x in pair] + same[len(other):] + other[len(same):]
    return ([changed, changed] + mixed)[:count]


def reload_adding_forward(tool, fleet, new_port, count=20):
    """Rewrite warren.toml with one more forward on one tunnel and SIGHUP,
    while `count` connections through it and others stay open: seconds until
    the new forward passes data, the held connections that no longer echo,
    and the ssh processes whose pid changed."""
    changed = fleet.names[0]
    held = [Held(fleet.port(name)) for name in held_tunnels(fleet, changed, count)]
    try:
        if not all(h.roundtrip() for h in held):
            raise RuntimeError(f"scale: {tool.label}: a held connection failed before the reload")
        before = tool.ssh_pids()
        fleet.write_config(shared=tool.shared, extra={changed: [new_port]}, path=tool.config)
        watch = GapWatch(fleet.port(changed))
        t0 = time.monotonic()
        tool.reload()
        t = wait_echo(new_port, 30)
        serving = None if t is None else t - t0
        time.sleep(1.5)
        gap = watch.stop()
        after = tool.ssh_pids()
        dropped = [h.port for h in held if not h.roundtrip()]
        others_up = sum(1 for name in fleet.names if echo_once(fleet.port(name)))
    finally:
        for h in held:
            h.close()
    restarted = sorted({before[x] for x in before if after.get(x) != before[x]} - {None})
    return {"changed": changed, "new_port": new_port, "held": len(held), "held_on_changed": 2,
            "new_forward_serving_after": serving, "dropped": len(dropped), "dropped_ports": dropped,
            "ssh_restarted": len(restarted), "tunnels_passing_after": others_up,
            "changed_old_forward_refused_seconds": gap}


class GapWatch:
    """New connections through one forward, one every 5 ms on a thread of its
    own, until stop(): the time from the first failed echo to the last one
    (0 when none failed), i.e. how long the forward took no new connection."""

    def __init__(self, port):
        self.port = port
        self.failed = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            began = time.monotonic()
            if not echo_once(self.port, 0.5):
                self.failed.append(began)
            time.sleep(0.005)

    def stop(self):
        self.done.set()
        self.thread.join()
        return self.failed[-1] - self.failed[0] + 0.005 if self.failed else 0.0


def section_scale(bench):
    n, m = bench.args.scale_tunnels, bench.args.scale_bastions
    idle = 5 if bench.quick else 20
    low, high = bench.port_range
    overlap = ephemeral_overlap(low, high)
    avoid = set(bench.used_ports)
    if overlap:
        # Since Linux 4.6 connect() takes ports of the range's first port's
        # parity first (bind(0) the others): with the usual even start, the
        # odd ones are left alone while the even ones last.
        parity = ephemeral_parity()
        avoid |= {p for p in range(overlap[0], overlap[1] + 1) if p % 2 == parity}
        log(f"scale: ports {overlap[0]}-{overlap[1]} are in the kernel's ephemeral range (ip_local_port_range): "
            "using only those connect() does not take first")
    ports = free_ports(n + m + 1, start=low, end=high, avoid=avoid)
    bastions = []
    for i in range(m):
        workspace = os.path.join(bench.workspace, f"scale-b{i:03d}")
        os.makedirs(workspace)
        b = Bastion(bench.procs, workspace, ports[i])
        b.start()
        bastions.append(b)
    fleet = ScaleFleet(bench, bastions, ports[m:m + n])
    new_port = ports[m + n]
    log(f"scale: {m} bastions up; rendering {n} tunnels")
    fleet.render()
    result = {"tunnels": n, "bastions": m, "idle_window": idle, "ports": [low, high], "ephemeral_overlap": overlap}
    tag = f"scale{n}x{m}"
    runs = (
        lambda: Warren(bench, fleet, n, tag, config=fleet.write_config()),
        lambda: Warren(bench, fleet, n, tag + "s", shared=True,
                       config=fleet.write_config(shared=True, path=os.path.join(fleet.dir, "warren-shared.toml"))),
        lambda: Autossh(bench, fleet, n, tag),
    )
    for make in runs:
        tool = make()
        r = measure(bench, tool, fleet, bastions, timeout=max(120, n), idle=idle, new_port=new_port)
        result[tool.label] = r
        took = "-" if r["ready_seconds"] is None else f"{r['ready_seconds']:.1f} s"
        log(f"scale {n} over {m}: {tool.label}: {r['up']}/{n} up in {took} (first {_s(r['first_tunnel_seconds'])}, "
            f"median {_s(r['median_tunnel_seconds'])}, p90 {_s(r['p90_tunnel_seconds'])}; CPU until then "
            f"{r['start_cpu_seconds']:.2f} s, reaped children {r['start_reaped_children_cpu_seconds']:.2f} s), "
            f"{r['maxstartups_drops']} MaxStartups drops; idle CPU {r['supervisor_cpu_percent']:.2f} %, "
            f"{r['supervisor_wakeups_per_second']:.0f} wake-ups/s, RSS {r['supervisor_rss_kb'] / 1024:.0f} MB, "
            f"{r['supervisor_threads']} threads, {r['ssh_processes']} ssh"
            + ("" if not r["local_port_in_use_while_starting"] else
               f", {r['local_port_in_use_while_starting']} tunnels found their port taken")
            + "; kill -9: "
            + ", ".join("-" if x is None else f"{x:.2f} s" for x in r["kill_recovery_seconds"])
            + ("" if not r["reload"] else f"; reload: new forward after {_s(r['reload']['new_forward_serving_after'])}, "
               f"{r['reload']['dropped']}/{r['reload']['held']} held dropped, {r['reload']['ssh_restarted']} ssh restarted"))
        tool.stop()
        bench.procs.forget_exited()
        for b in bastions:
            b.wait_idle()
        bench.procs.reap_orphans()
    bench.raw["scale"] = result
    rows(bench, result)


def _s(x):
    return "-" if x is None else f"{x:.3f} s"


def rows(bench, result):
    """Each figure for warren against autossh, then the same for warren with
    share_connection = true (in the warren column) against autossh."""
    n, m, idle = result["tunnels"], result["bastions"], result["idle_window"]
    w, s, a = result["warren"], result["warren-shared"], result["autossh"]
    sec = f"scale {n}x{m}"
    shared = "shared: "

    def both(metric, unit, value, note="", shared_note=""):
        bench.row(sec, metric, unit, value(w), value(a), note=note)
        bench.row(sec, shared + metric, unit, value(s), value(a), note=shared_note)

    def up(r):
        return r["ready_seconds"] if r["up"] == n else f"{r['up']}/{n} up"

    for r in (w, s, a):
        ok = [x for x in r["kill_recovery_seconds"] if x is not None]
        r["kill_recovery_median"] = statistics.median(ok) if len(ok) == len(r["kill_recovery_seconds"]) else (
            f"{len(ok)}/{len(r['kill_recovery_seconds'])} recovered")

    def taken(r):
        k = r["local_port_in_use_while_starting"]
        return f"; {k} tunnel(s) found their local port taken (local_port_in_use)" if k else ""

    overlap = result["ephemeral_overlap"]
    ephemeral = (f"; ports {overlap[0]}-{overlap[1]} are in the kernel's ephemeral range, so only ports of the parity "
                 "connect() takes last were used: a tunnel port an outgoing connection holds (or its TIME_WAIT, 60 s) "
                 "delays that tunnel") if overlap else ""
    both(f"{n} tunnels over {m} sshd: all pass data after", "s", up,
         note=f"ssh restarts while starting: warren {w['restarts_during_start']}, autossh {a['restarts_during_start']}"
         + taken(w) + ephemeral,
         shared_note="share_connection = true: one ssh master per bastion, forwards added over its control socket; "
         "issue 13: within 5 s and within a quarter of autossh's time" + taken(s))
    both(f"{n} over {m}: MaxStartups drops (sshd logs)", "", lambda r: r["maxstartups_drops"])
    both(f"{n} over {m}: supervisor CPU, {idle} s idle", "% of a core", lambda r: r["supervisor_cpu_percent"])
    both(f"{n} over {m}: supervisor wake-ups per second, idle", "", lambda r: round(r["supervisor_wakeups_per_second"]),
         note="context switches of all its threads (autossh: of all autossh processes)")
    both(f"{n} over {m}: supervisor RSS (autossh: sum of {a['supervisor_processes']})", "MB",
         lambda r: r["supervisor_rss_kb"] / 1024)
    both(f"{n} over {m}: supervisor PSS", "MB", lambda r: r["supervisor_pss_kb"] / 1024)
    both(f"{n} over {m}: supervisor threads", "", lambda r: r["supervisor_threads"])
    bench.row(sec, f"{n} over {m}: recovery after kill -9 of one ssh, median of {len(w['kill_recovery_seconds'])}", "s",
              w["kill_recovery_median"], a["kill_recovery_median"],
              note="one tunnel at a time, after the idle window, while all the others stay up")
    bench.row(sec, shared + f"{n} over {m}: kill -9 of one master: every tunnel on it passes data again, "
              f"median of {len(s['kill_recovery_seconds'])}", "s", s["kill_recovery_median"], a["kill_recovery_median"],
              note="one bastion's master at a time (autossh column: its one-tunnel figure above); "
              "issue 13: back within 1 s")
    both(f"{n} over {m}: ssh processes / their PSS (sum)", "",
         lambda r: f"{r['ssh_processes']} / {r['ssh_pss_kb'] / 1024:.0f} MB",
         shared_note=f"issue 13: at most one per bastion ({m}); the short ssh -O are not counted")
    held = w["reload"]["held"]
    both(f"{n} over {m}: reload adding 1 forward: it passes data after", "s",
         lambda r: r["reload"]["new_forward_serving_after"] if r["reload"] else "n/a",
         note="from SIGHUP; autossh has no reload")
    both(f"{n} over {m}: reload adding 1 forward: its tunnel's old forward refused new connections for", "s",
         lambda r: r["reload"]["changed_old_forward_refused_seconds"] if r["reload"] else "n/a",
         note="a new connection every 5 ms through the changed tunnel's existing forward: first to last failure")
    both(f"{n} over {m}: reload adding 1 forward: held connections dropped, of {held}", "count",
         lambda r: r["reload"]["dropped"] if r["reload"] else "n/a",
         note=f"{held} connections held through the changed tunnel (2), others of its bastion and of the others; "
         f"one ssh per tunnel: the changed tunnel's ssh restarts ({w['reload']['ssh_restarted']} ssh restarted)",
         shared_note=f"issue 13: none; {s['reload']['ssh_restarted']} ssh restarted")
