#!/usr/bin/env python3
"""`make soak`: a seeded chaos run against the real `warren run` (release
build). One loopback sshd is the bastion; behind each tunnel is its own target
(a PostgreSQL 15 cluster for the first --postgres tunnels, a socat echo server
for the rest). For --duration seconds the soak breaks things, chosen by a
random generator seeded with --seed, one at a time or a few overlapping: kill
-9 of a tunnel's ssh, the bastion dropping or freezing a connection, the
bastion's sshd stopping and starting, a target stopping and starting, another
program holding a tunnel's local port. It prints recovery per fault kind
(median, p95, max; from the fault's end until data passes, and until
status.json says `up`), faults never recovered, orphans, supervisor crashes
and status/data disagreements at the end, and writes everything to
bench-results/soak-<timestamp>.json. Needs root. Stdlib only. Not part of
`make test`. See bench/README.md, section "make soak"."""

import argparse
import atexit
import datetime
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import procs  # noqa: E402
from faults import Fault, Injector, Watcher  # noqa: E402
from fixtures import ROOT, build_warren, ensure_packages, log  # noqa: E402
from net import free_ports  # noqa: E402
from procs import Procs, alive, children, comm, stat, wait_until  # noqa: E402
from soakprocs import SoakBastion, WarrenProcess  # noqa: E402
from soakreport import summarize, render  # noqa: E402
from targets import make_targets  # noqa: E402

# Relative weights of the fault kinds; the sshd restart hits every tunnel.
WEIGHTS = {"kill": 3, "drop": 3, "freeze": 2, "sshd": 1, "target": 2, "port": 2}
# How long each kind of fault lasts, seconds (uniform between the two).
HOLDS = {"kill": (0, 0), "drop": (0, 0), "freeze": (3.5, 5.0), "sshd": (0.5, 2.0), "target": (1.0, 4.0),
         "port": (2.0, 5.0)}


class Interrupted(Exception):
    pass


def _on_signal(number, _frame):
    raise Interrupted(f"signal {number}")


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.procs = Procs()
        self.workspace = tempfile.mkdtemp(prefix="ws-", dir="/tmp")
        self.faults = []
        self.threads = []
        self.stopping = False
        self.crashes = []
        self.orphans = set()
        self.zombies = set()
        self._seen_zombies = set()
        self.cleaned = False

    # ------------------------------------------------------------- set-up

    def setup(self):
        ensure_packages()
        if os.geteuid() != 0:
            sys.exit("soak: sshd and postgres need root; run as root")
        for tool in ("socat", "psql"):
            if not shutil.which(tool):
                sys.exit(f"soak: {tool} is missing (apt-get install socat postgresql-15)")
        self.warren_bin = self.args.warren or build_warren(self.workspace)
        n = self.args.tunnels
        low, high = (int(x) for x in self.args.ports.split("-"))
        ports = free_ports(2 * n + 1, start=low, end=high)
        self.bastion = SoakBastion(self.procs, self.workspace, ports[0])
        self.bastion.start()
        self.names = [f"t{i:02d}" for i in range(n)]
        self.local_port = dict(zip(self.names, ports[1:n + 1]))
        targets, took = make_targets(self.procs, self.workspace, ports[n + 1:], min(self.args.postgres, n))
        self.targets = dict(zip(self.names, targets))
        log(f"bastion sshd on :{self.bastion.port}; {n} targets ({min(self.args.postgres, n)} postgres) "
            f"up in {took:.1f} s")
        self.config = self.write_config()
        self.warren = WarrenProcess(self)
        self.warren.start()
        began = time.monotonic()
        if not wait_until(lambda: self.all_up() or self.warren.process.poll() is not None, 120, 0.05) \
                or self.warren.process.poll() is not None:
            raise RuntimeError(f"not every tunnel came up within 120 s (see {self.warren.log})")
        log(f"warren: {n} tunnels up in {time.monotonic() - began:.1f} s")

    def write_config(self):
        k_interval, k_count = self.args.keepalive
        lines = [f'state_dir = "{self.workspace}/state"', "", "[defaults]", f"port = {self.bastion.port}",
                 'user = "root"', f'identity_file = "{self.bastion.client_key}"',
                 f"keepalive_interval = {k_interval}", f"keepalive_count = {k_count}"]
        for name in self.names:
            lines += ["", f"[tunnels.{name}]", 'host = "127.0.0.1"', f'host_key = "{self.bastion.host_key}"',
                      f'local_forward = ["127.0.0.1:{self.local_port[name]}:127.0.0.1:{self.targets[name].port}"]']
        path = os.path.join(self.workspace, "warren.toml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def all_up(self):
        status = self.warren.status()
        return all(status.get(n, {}).get("state") == "up" and self.targets[n].check(self.local_port[n], 0.5)
                   for n in self.names)

    # -------------------------------------------------------------- chaos

    def busy(self):
        return {t for f in self.faults if not f.done.is_set() for t in f.tunnels}

    def pick(self):
        """The next fault: a kind by weight, a tunnel that is `up` and not under
        another fault (one still down from an earlier fault is left alone, so
        that every fault starts from a working tunnel). None when nothing fits
        now (the caller waits and asks again)."""
        kinds = list(WEIGHTS)
        kind = self.rng.choices(kinds, [WEIGHTS[k] for k in kinds])[0]
        low, high = HOLDS[kind]
        hold = self.rng.uniform(low, high)
        busy = self.busy()
        if kind == "sshd":
            return Fault(kind, self.names, hold)
        status = self.warren.status()
        free = [n for n in self.names if n not in busy and status.get(n, {}).get("state") == "up"
                and status[n].get("pid")]
        if len(busy) >= self.args.overlap or not free:
            return None
        fault = Fault(kind, [self.rng.choice(free)], hold)
        if kind in ("drop", "freeze"):
            pid = self.warren.ssh_pid(fault.tunnels[0])
            fault.session = self.bastion.session_of(pid) if pid else None
            if not fault.session:
                return None
        return fault

    def launch(self, fault):
        # Before any thread starts: the watchers compare status's pid with these.
        status = self.warren.status()
        fault.old_pids = {t: status.get(t, {}).get("pid") for t in fault.tunnels}
        self.faults.append(fault)
        watchers = []
        injector = Injector(self)

        def run():
            try:
                injector.apply(fault)
            except Exception as e:  # the fault could not be applied; keep the soak going
                fault.skipped = f"{type(e).__name__}: {e}"
                fault.finish()
            for w in watchers:
                w.join()
            fault.done.set()

        for name in fault.tunnels:
            w = Watcher(self, fault, name, self.args.recover_timeout)
            watchers.append(threading.Thread(target=w.run, daemon=True))
        for w in watchers:
            w.start()
        thread = threading.Thread(target=run, daemon=True)
        self.threads.append(thread)
        thread.start()

    def chaos(self):
        """Injects faults until --duration is over, then waits for the last
        ones to recover (or time out)."""
        self.t0 = time.monotonic()
        end = self.t0 + self.args.duration
        next_report = self.t0 + 30
        while time.monotonic() < end:
            self.check_supervisor()
            fault = self.pick()
            if fault and fault.kind == "sshd":
                self.wait_quiet()  # it hits every tunnel: let the others' faults finish first
                if time.monotonic() >= end:
                    break
            if fault:
                self.launch(fault)
                log(f"{time.monotonic() - self.t0:6.1f} s: {fault.kind} {','.join(fault.tunnels) if len(fault.tunnels) < 3 else 'all'}"
                    + (f" for {fault.hold:.1f} s" if fault.hold else ""))
            self.sleep_until(min(end, time.monotonic() + self.rng.uniform(*self.args.gap)))
            if time.monotonic() >= next_report:
                next_report += 30
                done = [f for f in self.faults if f.done.is_set()]
                log(f"{time.monotonic() - self.t0:6.1f} s: {len(self.faults)} faults, {len(done)} measured")
        log("duration over; waiting for the last faults to recover")
        self.wait_quiet()

    def wait_quiet(self):
        """Until every fault so far has been measured (recovered or timed out)."""
        for thread in self.threads:
            while thread.is_alive():
                self.check_supervisor()
                self.scan_orphans()
                thread.join(0.5)

    def sleep_until(self, when):
        while time.monotonic() < when:
            self.scan_orphans()
            time.sleep(min(0.5, max(0, when - time.monotonic())))

    def check_supervisor(self):
        p = self.warren.process
        if p.poll() is not None:
            self.crashes.append({"at": round(time.monotonic() - self.t0, 3), "exit": p.returncode})
            log(f"warren exited unexpectedly (exit {p.returncode}); starting it again")
            self.procs.forget_exited()
            self.warren.start()

    def scan_orphans(self):
        """ssh processes of this soak that warren is not the parent of
        (re-parented to the soak, which is a subreaper), and zombies warren
        leaves unreaped for longer than one scan."""
        wpid = self.warren.process.pid
        for pid in procs.descendants(self.procs.me):
            s = stat(pid)
            if not s or s[3] != "ssh":
                continue
            if s[1] == "Z" and s[0] == wpid:
                key = ("zombie", pid)
                if key in self._seen_zombies:
                    self.zombies.add(pid)
                self._seen_zombies.add(key)
            elif s[0] != wpid:
                self.orphans.add(pid)

    # ------------------------------------------------------------- ending

    def final_checks(self):
        """After a quiet --settle seconds: does status agree with the forwards?"""
        time.sleep(self.args.settle)
        status = self.warren.status()
        rows = []
        for name in self.names:
            state = status.get(name, {}).get("state")
            ok = self.targets[name].final_check(self.local_port[name])
            rows.append({"tunnel": name, "target": self.targets[name].kind, "state": state, "passes": ok,
                         "agree": (state == "up") == ok})
        return rows

    def stop_warren(self):
        """SIGTERM warren, then look for any ssh of this soak still alive."""
        p = self.warren.process
        kids_before = [c for c in children(p.pid) if comm(c) == "ssh"]
        p.send_signal(signal.SIGTERM)
        try:
            code = p.wait(20)
        except subprocess.TimeoutExpired:
            code = None
        time.sleep(0.5)
        left = [pid for pid in kids_before if alive(pid)] + self.soak_ssh_alive(exclude=kids_before)
        return code, left

    def soak_ssh_alive(self, exclude=()):
        """Every live ssh whose command line names this soak's state directory."""
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in exclude:
                continue
            argv = procs.cmdline(entry)
            if argv and argv[0] in ("/usr/bin/ssh", "ssh") and any(self.workspace in a for a in argv) and alive(int(entry)):
                out.append(int(entry))
        return out

    def commit(self):
        """The commit measured: HEAD when the soak built warren, else the binary given."""
        if self.args.warren:
            return f"binary {self.args.warren}"
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        self.stopping = True
        for f in self.faults:
            f.end_event.set()
        self.procs.cleanup()
        if self.args.keep:
            log(f"kept {self.workspace}")
        else:
            shutil.rmtree(self.workspace, ignore_errors=True)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=240, help="seconds of chaos (default 240)")
    parser.add_argument("--tunnels", type=int, default=20, help="tunnels (default 20)")
    parser.add_argument("--postgres", type=int, default=10,
                        help="how many tunnels get a PostgreSQL target, the rest socat echo (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault schedule (default 1)")
    parser.add_argument("--overlap", type=int, default=3, help="single-tunnel faults at once, at most (default 3)")
    parser.add_argument("--gap", type=float, nargs=2, default=(0.5, 3.0), metavar=("MIN", "MAX"),
                        help="seconds between fault starts (default 0.5 3)")
    parser.add_argument("--keepalive", type=int, nargs=2, default=(1, 2), metavar=("INTERVAL", "COUNT"),
                        help="warren's keepalive_interval and keepalive_count (default 1 2: a freeze is found in 2-3 s)")
    parser.add_argument("--recover-timeout", type=float, default=30,
                        help="seconds after a fault's end before it counts as never recovered (default 30)")
    parser.add_argument("--settle", type=float, default=5, help="quiet seconds before the final check (default 5)")
    parser.add_argument("--ports", default="28000-31999", help="LOW-HIGH: the ports the soak may use")
    parser.add_argument("--warren", help="a warren binary to use instead of building the release one")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, configs)")
    return parser.parse_args()


def main():
    args = parse_args()
    procs.set_child_subreaper()
    soak = Soak(args)
    atexit.register(soak.cleanup)
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _on_signal)
    try:
        soak.setup()
        load_before = os.getloadavg()
        began = time.monotonic()
        soak.chaos()
        soak.scan_orphans()
        final = soak.final_checks()
        exit_code, left = soak.stop_warren()
        meta = {"timestamp": datetime.datetime.now().strftime("%Y%m%dT%H%M%S"), "seed": args.seed,
                "tunnels": args.tunnels, "postgres": min(args.postgres, args.tunnels), "duration": args.duration,
                "keepalive": list(args.keepalive), "overlap": args.overlap, "gap": list(args.gap),
                "recover_timeout": args.recover_timeout, "seconds": round(time.monotonic() - began, 1),
                "cpus": os.cpu_count(), "loadavg_before": load_before[0], "loadavg_after": os.getloadavg()[0],
                "ssh": subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip(),
                "commit": soak.commit(), "kernel": platform.release()}
        result = summarize(soak, meta, final, exit_code, left)
        print(render(result))
        out_dir = os.path.join(ROOT, "bench-results")
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, f"soak-{meta['timestamp']}.json")
        with open(path, "w") as f:
            json.dump(result, f, indent=1)
        log(f"wrote {path}")
    except Interrupted as e:
        log(f"interrupted ({e}); cleaning up")
        sys.exit(130)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        soak.cleanup()


if __name__ == "__main__":
    main()
