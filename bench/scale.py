"""`make bench-scale` (bench.py --only scale): N tunnels spread over M loopback
sshd instances, each one a "bastion" with sshd's default MaxStartups, warren
(one process) against one `autossh -M 0` per tunnel. Per tool: time until
every forward passes data, MaxStartups drops in the sshd logs, and after a
calm moment the supervisor's idle CPU, wake-ups, RSS, PSS and threads, and the
ssh children's count and PSS. Issue 13; the lead runs 1000 over 50."""

import os
import signal
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from fixtures import Bastion, log
from net import ReadyPoller, echo_once, free_ports, wait_echo
from procs import CLK_TCK, cpu_ticks, memory_kb
from tools import Autossh, Warren


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

    def write_config(self, n=None):
        lines = [f'state_dir = "{self.dir}/state"', "", "[defaults]", 'user = "root"']
        for i, (name, port) in enumerate(zip(self.names, self.ports)):
            b = self.bastion_of(i)
            lines += ["", f"[tunnels.{name}]", 'host = "127.0.0.1"', f"port = {b.port}",
                      f'identity_file = "{b.client_key}"', f'host_key = "{b.host_key}"',
                      f'local_forward = ["127.0.0.1:{port}:127.0.0.1:{self.bench.echo_port}"]']
        path = os.path.join(self.dir, "warren.toml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
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
    """Voluntary + involuntary context switches of every thread of `pid`: each
    wake-up of a sleeping thread is one."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def measure(bench, tool, fleet, bastions, timeout, idle):
    offsets = log_offsets(bastions)
    t0 = time.monotonic()
    tool.start()
    done = ReadyPoller(every=0.02).run(fleet.ports, timeout)
    ready = max(done.values()) - t0 if len(done) == len(fleet.ports) else None
    drops = maxstartups_drops(bastions, offsets)
    restarts = tool.restarts()
    time.sleep(5)
    sup, kids = tool.supervisor_pids(), tool.child_pids()
    c0, k0, w0 = sum(map(cpu_ticks, sup)), sum(map(cpu_ticks, kids)), sum(map(context_switches, sup))
    began = time.monotonic()
    time.sleep(idle)
    elapsed = time.monotonic() - began
    c1, k1, w1 = sum(map(cpu_ticks, sup)), sum(map(cpu_ticks, kids)), sum(map(context_switches, sup))
    mem = [memory_kb(p) for p in sup]
    mem_kids = [memory_kb(p) for p in kids]
    kills = kill_recoveries(tool, fleet, 3 if bench.quick else 5)
    return {
        "kill_recovery_seconds": kills,
        "up": len(done), "of": len(fleet.ports), "ready_seconds": ready, "maxstartups_drops": drops,
        "restarts_during_start": restarts, "idle_seconds": elapsed,
        "supervisor_processes": len(sup),
        "supervisor_cpu_percent": 100.0 * (c1 - c0) / CLK_TCK / elapsed,
        "supervisor_wakeups_per_second": (w1 - w0) / elapsed,
        "supervisor_rss_kb": sum(m["rss"] or 0 for m in mem),
        "supervisor_pss_kb": sum(m["pss"] or 0 for m in mem),
        "supervisor_threads": sum(m["threads"] or 0 for m in mem),
        "ssh_processes": len(kids),
        "ssh_pss_kb": sum(m["pss"] or 0 for m in mem_kids),
        "ssh_cpu_percent": 100.0 * (k1 - k0) / CLK_TCK / elapsed,
    }


def kill_recoveries(tool, fleet, count):
    """kill -9 of one tunnel's ssh at a time, among all the others up: seconds
    until an echo passes through it again (None: not within 20 s)."""
    out = []
    step = max(1, len(fleet.names) // count)
    for name in fleet.names[::step][:count]:
        port, pid = fleet.port(name), tool.ssh_pid(name)
        if not pid or not echo_once(port):
            out.append(None)
            continue
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        t = wait_echo(port, 20)
        out.append(None if t is None else t - t0)
        time.sleep(0.3)
    return out


def section_scale(bench):
    n, m = bench.args.scale_tunnels, bench.args.scale_bastions
    idle = 5 if bench.quick else 20
    low, high = bench.port_range
    ports = free_ports(n + m, start=low, end=high, avoid=set(bench.used_ports))
    bastions = []
    for i in range(m):
        workspace = os.path.join(bench.workspace, f"scale-b{i:03d}")
        os.makedirs(workspace)
        b = Bastion(bench.procs, workspace, ports[i])
        b.start()
        bastions.append(b)
    fleet = ScaleFleet(bench, bastions, ports[m:])
    log(f"scale: {m} bastions up; rendering {n} tunnels")
    fleet.render()
    result = {"tunnels": n, "bastions": m, "idle_window": idle}
    for make in (Warren, Autossh):
        tool = make(bench, fleet, n, f"scale{n}x{m}", **({"config": fleet.write_config()} if make is Warren else {}))
        r = measure(bench, tool, fleet, bastions, timeout=max(120, n), idle=idle)
        result[tool.label] = r
        took = "-" if r["ready_seconds"] is None else f"{r['ready_seconds']:.1f} s"
        log(f"scale {n} over {m}: {tool.label}: {r['up']}/{n} up in {took}, "
            f"{r['maxstartups_drops']} MaxStartups drops; idle CPU {r['supervisor_cpu_percent']:.2f} %, "
            f"{r['supervisor_wakeups_per_second']:.0f} wake-ups/s, RSS {r['supervisor_rss_kb'] / 1024:.0f} MB, "
            f"{r['supervisor_threads']} threads")
        tool.stop()
        bench.procs.forget_exited()
        for b in bastions:
            b.wait_idle()
        bench.procs.reap_orphans()
    bench.raw["scale"] = result
    rows(bench, result)


def rows(bench, result):
    n, m, idle = result["tunnels"], result["bastions"], result["idle_window"]
    w, a = result["warren"], result["autossh"]
    sec = f"scale {n}x{m}"

    def up(r):
        return r["ready_seconds"] if r["up"] == n else f"{r['up']}/{n} up"

    bench.row(sec, f"{n} tunnels over {m} sshd: all pass data after", "s", up(w), up(a),
              note=f"ssh restarts while starting: warren {w['restarts_during_start']}, autossh {a['restarts_during_start']}")
    bench.row(sec, f"{n} over {m}: MaxStartups drops (sshd logs)", "", w["maxstartups_drops"], a["maxstartups_drops"])
    bench.row(sec, f"{n} over {m}: supervisor CPU, {idle} s idle", "% of a core",
              w["supervisor_cpu_percent"], a["supervisor_cpu_percent"])
    bench.row(sec, f"{n} over {m}: supervisor wake-ups per second, idle", "",
              round(w["supervisor_wakeups_per_second"]), round(a["supervisor_wakeups_per_second"]),
              note="context switches of all its threads (autossh: of all autossh processes)")
    bench.row(sec, f"{n} over {m}: supervisor RSS (autossh: sum of {a['supervisor_processes']})", "MB",
              w["supervisor_rss_kb"] / 1024, a["supervisor_rss_kb"] / 1024)
    bench.row(sec, f"{n} over {m}: supervisor PSS", "MB", w["supervisor_pss_kb"] / 1024, a["supervisor_pss_kb"] / 1024)
    bench.row(sec, f"{n} over {m}: supervisor threads", "", w["supervisor_threads"], a["supervisor_threads"])
    for label, r in (("warren", w), ("autossh", a)):
        ok = [x for x in r["kill_recovery_seconds"] if x is not None]
        r["kill_recovery_median"] = statistics.median(ok) if len(ok) == len(r["kill_recovery_seconds"]) else (
            f"{len(ok)}/{len(r['kill_recovery_seconds'])} recovered")
    bench.row(sec, f"{n} over {m}: recovery after kill -9 of one ssh, median of {len(w['kill_recovery_seconds'])}", "s",
              w["kill_recovery_median"], a["kill_recovery_median"],
              note="one tunnel at a time, after the idle window, while all the others stay up")
    bench.row(sec, f"{n} over {m}: ssh processes / their PSS (sum)", "",
              f"{w['ssh_processes']} / {w['ssh_pss_kb'] / 1024:.0f} MB", f"{a['ssh_processes']} / {a['ssh_pss_kb'] / 1024:.0f} MB")
