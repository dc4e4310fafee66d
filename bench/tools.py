"""The three ways of keeping tunnels up that the bench compares: warren, one
autossh per tunnel, and bare ssh (the floor: no supervisor at all; the bench
itself starts a fresh ssh where a supervisor would)."""

import json
import os
import signal

import procs
from procs import alive, children, cmdline, comm, wait_until

# autossh's environment, and why:
#   AUTOSSH_GATETIME=0  autossh's default (30 s) gives up for good when the
#                       first ssh exits within 30 s of starting, e.g. when
#                       sshd's MaxStartups drops one of many simultaneous
#                       connects; 0 makes it retry instead (its man page says
#                       to set 0 when starting at boot).
#   AUTOSSH_PATH        the same ssh binary warren runs.
#   AUTOSSH_LOGFILE     its messages go to a file instead of syslog (the bench
#                       counts its restarts there).
# Everything else is autossh's default; -M 0 turns its monitor port off, so ssh's
# ServerAlive settings (from the same generated ssh_config) are what detect a
# dead connection.
AUTOSSH_ENV = {"AUTOSSH_GATETIME": "0", "AUTOSSH_PATH": "/usr/bin/ssh"}


def _clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSH_ASKPASS", "DISPLAY")}
    env.update(extra or {})
    return env


class Warren:
    """`warren run`: one ssh per tunnel, or with `shared` (the config must say
    `share_connection = true`) one ssh master per bastion."""

    label = "warren"

    def __init__(self, bench, fleet, n, tag, config=None, shared=False):
        self.bench = bench
        self.fleet = fleet
        self.names = fleet.names[:n]
        self.config = config or fleet.write_config(n)
        self.shared = shared
        if shared:
            self.label = "warren-shared"
        self.state_dir = os.path.join(bench.workspace, f"state-{tag}")
        self.log = os.path.join(bench.workspace, f"warren-{tag}.log")
        self.process = None

    def start(self):
        self.process = self.bench.procs.spawn(
            [self.bench.warren, "run", "--config", self.config, "--state-dir", self.state_dir],
            log=self.log, env=_clean_env())

    def status(self):
        return read_status(self.state_dir, self.process.pid)

    def ssh_pid(self, name):
        """The tunnel's ssh: warren's direct child whose pid status.json names
        (setpriv and its guard exec into ssh, keeping the pid). Shared: the
        master's, which every tunnel riding it reports."""
        t = self.status().get(name)
        return t.get("pid") if t else None

    def ssh_pids(self):
        return {name: t.get("pid") for name, t in self.status().items()}

    def supervisor_pids(self):
        return [self.process.pid] if self.process and self.process.poll() is None else []

    def child_pids(self):
        """warren's ssh children; shared: the masters only, not the short
        `ssh -O forward|cancel` that may be running at that moment."""
        return [c for c in children(self.process.pid) if comm(c) == "ssh" and (not self.shared or is_master(c))]

    def restarts(self):
        return sum(t.get("restarts", 0) for t in self.status().values())

    def reload(self):
        os.kill(self.process.pid, signal.SIGHUP)

    def stop(self):
        if self.process:
            self.bench.procs.stop(self.process, signal.SIGTERM, grace=15)
            self.bench.procs.forget_exited()


def is_master(pid):
    """A shared connection's master: `ssh ... warren-_shared-<id>` (the alias of
    ConnectionShare.name), not an `ssh -O ...` to its control socket."""
    argv = cmdline(pid)
    return bool(argv) and argv[-1].startswith("warren-_shared-") and "-O" not in argv


def read_status(state_dir, pid):
    """The tunnels of `state_dir`/status.json by name, if the supervisor `pid`
    wrote it (an earlier one's file does not count); else {}."""
    try:
        with open(os.path.join(state_dir, "status.json")) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return {}
    if report.get("supervisor_pid") != pid:
        return {}
    return {t["name"]: t for t in report.get("tunnels", [])}


def stop_all(bench, processes):
    """SIGTERM to every one at once (so they go down together), then wait for
    each, SIGKILL after 10 s: what stopping a fleet of one process per tunnel
    means for autossh and for bare ssh alike."""
    for p in processes.values():
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in processes.values():
        bench.procs.stop(p, signal.SIGTERM, grace=10)
    bench.procs.forget_exited()


class Autossh:
    label = "autossh"

    def __init__(self, bench, fleet, n, tag, configs=None):
        self.bench = bench
        self.fleet = fleet
        self.names = fleet.names[:n]
        self.configs = dict(configs or fleet.configs)
        self.log = os.path.join(bench.workspace, f"autossh-{tag}.log")
        self.processes = {}

    def start(self, names=None):
        env = _clean_env(dict(AUTOSSH_ENV, AUTOSSH_LOGFILE=self.log))
        for name in names or self.names:
            self.processes[name] = self.bench.procs.spawn(
                ["autossh", "-M", "0", "-F", self.configs[name], "-N", f"warren-{name}"], env=env)

    def ssh_pid(self, name):
        p = self.processes.get(name)
        if not p or p.poll() is not None:
            return None
        kids = [c for c in children(p.pid) if comm(c) == "ssh" and alive(c)]
        return kids[0] if kids else None

    def ssh_pids(self):
        return {name: self.ssh_pid(name) for name in self.processes}

    def supervisor_pids(self):
        return [p.pid for p in self.processes.values() if p.poll() is None]

    def child_pids(self):
        return [c for p in self.supervisor_pids() for c in children(p) if comm(c) == "ssh"]

    def exited(self, name):
        return self.processes[name].poll() is not None

    def restarts(self):
        """Restarts autossh logged ("... restarting ssh")."""
        try:
            with open(self.log, errors="replace") as f:
                return sum(1 for line in f if "restarting ssh" in line)
        except OSError:
            return 0

    def restart(self, name, config):
        """What autossh offers instead of a reload: stop that tunnel's autossh
        (SIGTERM: it stops its ssh) and start a new one on the new config."""
        self.bench.procs.stop(self.processes[name], signal.SIGTERM, grace=10)
        self.configs[name] = config
        self.start([name])

    def stop(self):
        stop_all(self.bench, self.processes)
        self.processes = {}


class BareSSH:
    """The floor: `ssh -F FILE -N warren-NAME`, nothing around it. Where a
    supervisor would restart it, the bench starts a fresh one itself, at once."""

    label = "ssh"

    def __init__(self, bench, fleet, n, tag, configs=None):
        self.bench = bench
        self.fleet = fleet
        self.names = fleet.names[:n]
        self.configs = dict(configs or fleet.configs)
        self.log = os.path.join(bench.workspace, f"ssh-{tag}.log")
        self.processes = {}
        self.respawns = 0

    def start(self, names=None):
        env = _clean_env()
        for name in names or self.names:
            self.processes[name] = self.bench.procs.spawn(
                ["/usr/bin/ssh", "-F", self.configs[name], "-N", f"warren-{name}"], log=self.log, env=env)

    def respawn_exited(self, names):
        """Starts a fresh ssh for each of `names` whose ssh has exited."""
        for name in names:
            if self.processes[name].poll() is not None:
                self.respawns += 1
                self.start([name])

    def ssh_pid(self, name):
        p = self.processes.get(name)
        return p.pid if p and p.poll() is None else None

    def exited(self, name):
        return self.processes[name].poll() is not None

    def supervisor_pids(self):
        return []

    def child_pids(self):
        return [p.pid for p in self.processes.values() if p.poll() is None]

    def restarts(self):
        return self.respawns

    def stop(self):
        stop_all(self.bench, self.processes)
        self.processes = {}
