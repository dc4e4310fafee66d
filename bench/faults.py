"""The faults `make soak` injects, and how each one's recovery is measured.

A fault has a start (when the soak breaks something) and an end (when the soak
stops breaking it: the kill itself, the thaw, sshd listening again, the target
answering again, the port released). Recovery is measured per tunnel from the
end: until the forward passes data end to end (`data`), and separately until
status.json says `up` with a new ssh where the old one had to go (`status`).
A freeze ends, for this purpose, at whichever comes first of the thaw and the
old ssh's exit (its keepalives found the dead bastion): what is measured is
how soon warren reconnects, not the keepalive clock the soak configured."""

import os
import signal
import socket
import threading
import time

from procs import alive, wait_until

# kind -> what the soak does; REPLACES_SSH: kinds after which status must name a new ssh
KINDS = {
    "kill": "kill -9 of the tunnel's ssh",
    "drop": "the bastion drops the connection (SIGKILL its per-connection sshd)",
    "freeze": "the bastion freezes (SIGSTOP its per-connection sshd), thawed later",
    "sshd": "the bastion's sshd stops (listener and every connection) and starts again",
    "target": "the target behind a tunnel stops and starts again",
    "port": "another program holds the tunnel's local port (after a kill -9 of its ssh)",
}
REPLACES_SSH = {"kill", "drop", "freeze", "sshd", "port"}


class Fault:
    def __init__(self, kind, tunnels, hold):
        self.kind = kind
        self.tunnels = list(tunnels)
        self.hold = hold  # seconds the fault lasts (freeze, sshd, target, port)
        self.old_pids = {}
        self.started = None
        self.ended = None
        self.end_event = threading.Event()
        self.data = {}  # tunnel -> seconds from the end, None = never
        self.status = {}
        self.status_left_up = {}  # tunnel -> status showed something else than up after the start
        self.detected = {}  # freeze: tunnel -> seconds from the freeze until the old ssh exited
        self.refused = {}  # tunnel -> client connects refused from the fault's start until it recovered
        self.skipped = None  # why the fault could not be applied
        self.session = None  # drop, freeze: the bastion's per-connection sshd
        self.done = threading.Event()

    def finish(self, when=None):
        self.ended = when or time.monotonic()
        self.end_event.set()

    def to_json(self, t0):
        def rel(x):
            return None if x is None else round(x - t0, 3)

        return {"kind": self.kind, "tunnels": self.tunnels, "hold": round(self.hold, 3),
                "started": rel(self.started), "ended": rel(self.ended), "skipped": self.skipped,
                "data": self.data, "status": self.status, "status_left_up": self.status_left_up,
                "detected": self.detected, "refused": self.refused}


class Injector:
    """Applies one fault; runs in the fault's own thread (holds sleep there)."""

    def __init__(self, soak):
        self.soak = soak

    def apply(self, fault):
        fault.started = time.monotonic()
        getattr(self, f"_{fault.kind}")(fault)

    def _kill(self, fault):
        os.kill(fault.old_pids[fault.tunnels[0]], signal.SIGKILL)
        fault.finish()

    def _drop(self, fault):
        self.soak.bastion.drop(fault.session)
        fault.finish()

    def _freeze(self, fault):
        tree = self.soak.bastion.freeze(fault.session)
        pid = fault.old_pids[fault.tunnels[0]]
        deadline = fault.started + fault.hold
        wait_until(lambda: not alive(pid), max(0.0, deadline - time.monotonic()), 0.005)
        if not alive(pid):
            fault.detected[fault.tunnels[0]] = round(time.monotonic() - fault.started, 3)
            fault.finish()
        time.sleep(max(0, deadline - time.monotonic()))
        self.soak.bastion.thaw(tree)
        if not fault.end_event.is_set():
            fault.finish()

    def _sshd(self, fault):
        self.soak.bastion.stop()
        time.sleep(fault.hold)
        self.soak.bastion.start()
        fault.finish()

    def _target(self, fault):
        target = self.soak.targets[fault.tunnels[0]]
        target.stop()
        time.sleep(fault.hold)
        if not target.start():
            fault.skipped = "the target did not start again"
        fault.finish()

    def _port(self, fault):
        name = fault.tunnels[0]
        port = self.soak.local_port[name]
        os.kill(fault.old_pids[name], signal.SIGKILL)
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # As ssh does: connections through the forward may linger in TIME_WAIT.
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bound = False
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                holder.bind(("127.0.0.1", port))
                holder.listen(8)
                bound = True
                break
            except OSError:
                time.sleep(0.002)
        if not bound:
            # warren holds the port for the tunnel's life (or, before it did,
            # its new ssh bound first): this is then a plain kill.
            fault.skipped = "the port could not be taken from warren (it holds it while ssh restarts)"
            holder.close()
            fault.finish()
            return
        time.sleep(fault.hold)
        holder.close()
        fault.finish()


class Watcher:
    """Measures one tunnel's recovery from one fault: polls status.json and an
    end-to-end check every `every` seconds from the fault's end, until both
    passed or `timeout` seconds went by (then: never recovered)."""

    def __init__(self, soak, fault, name, timeout, every=0.02):
        self.soak, self.fault, self.name = soak, fault, name
        self.timeout, self.every = timeout, every

    def run(self):
        f, s, name = self.fault, self.soak, self.name
        old_pid = f.old_pids.get(name)
        left_up = False
        refused = 0
        port = s.local_port[name]
        while not f.end_event.wait(self.every):
            refused += connect_refused(port)
            t = s.warren.status().get(name)
            left_up = left_up or bool(t and (t.get("state") != "up" or t.get("pid") != old_pid))
        data_at = status_at = None
        # A freeze shorter than the keepalives' reach may leave the old ssh alive: then it may stay.
        must_replace = f.kind in REPLACES_SSH and not (f.kind == "freeze" and name not in f.detected)
        deadline = f.ended + self.timeout
        while (data_at is None or status_at is None) and time.monotonic() < deadline and not s.stopping:
            now = time.monotonic()
            t = s.warren.status().get(name)
            if t and (t.get("state") != "up" or t.get("pid") != old_pid):
                left_up = True
            if status_at is None and t and t.get("state") == "up" and (
                    not must_replace or t.get("pid") not in (None, old_pid)):
                status_at = now
            if data_at is None:
                refused += connect_refused(port)
            if data_at is None and s.targets[name].check(s.local_port[name], timeout=0.5):
                data_at = time.monotonic()
            time.sleep(self.every)
        f.refused[name] = refused
        f.data[name] = None if data_at is None else round(max(0.0, data_at - f.ended), 3)
        f.status[name] = None if status_at is None else round(max(0.0, status_at - f.ended), 3)
        f.status_left_up[name] = left_up


def connect_refused(port):
    """1 when a client's connect to 127.0.0.1:port is refused now (nobody
    listens: ssh owns the port and is gone), else 0; what clients see."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return 0
    except ConnectionRefusedError:
        return 1
    except OSError:
        return 0
