"""What clients see through faults (issue 20): a client connects every 20 ms
through one tunnel while its ssh is killed (kill -9) or the bastion drops its
session, a fault a second; counted per fault: connections refused, connections
cut (accepted, then closed before the echo), and the longest wait from connect
to echo. warren holds the listener and hands connections to ssh's master;
autossh's ssh owns the port, so it is closed between one ssh and the next."""

import os
import signal
import socket
import threading
import time

from net import PAYLOAD, wait_echo
from tools import Autossh, Warren


class SteadyClient:
    """Connects to 127.0.0.1:port every `interval` s on its own thread; each
    attempt is (start, outcome, seconds): answered, refused or cut."""

    def __init__(self, port, interval=0.02, attempt_timeout=5.0):
        self.port, self.interval, self.attempt_timeout = port, interval, attempt_timeout
        self.attempts = []
        self.stopped = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def attempt(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=self.attempt_timeout)
        except OSError:
            return "refused"
        try:
            s.settimeout(self.attempt_timeout)
            s.sendall(PAYLOAD)
            got = b""
            while len(got) < len(PAYLOAD):
                chunk = s.recv(len(PAYLOAD) - len(got))
                if not chunk:
                    return "cut"
                got += chunk
            return "answered" if got == PAYLOAD else "cut"
        except OSError:
            return "cut"
        finally:
            s.close()

    def run(self):
        following = time.monotonic()
        while not self.stopped:
            t0 = time.monotonic()
            outcome = self.attempt()
            self.attempts.append((t0, outcome, time.monotonic() - t0))
            following += self.interval
            pause = following - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                following = time.monotonic()

    def stop(self):
        self.stopped = True
        self.thread.join(timeout=15)
        return self.attempts


def per_fault(attempts, faults, end):
    """For each fault, the attempts that started from it until the next one."""
    out = []
    for i, t in enumerate(faults):
        until = faults[i + 1] if i + 1 < len(faults) else end
        window = [a for a in attempts if t <= a[0] < until]
        out.append({
            "attempts": len(window),
            "refused": sum(1 for a in window if a[1] == "refused"),
            "cut": sum(1 for a in window if a[1] == "cut"),
            "longest_wait": max((a[2] for a in window if a[1] == "answered"), default=None),
        })
    return out


def run_one(bench, make, kind, reps):
    tool = make(bench, bench.fleet, 1, f"clients-{kind}")
    name = tool.names[0]
    port = bench.fleet.port(name)
    r = bench.wait_ready(tool, [port], timeout=60)
    if r["up"] != 1:
        raise RuntimeError(f"clients: {tool.label} did not come up")
    client = SteadyClient(port)
    time.sleep(1)
    faults, gave_up = [], False
    for _ in range(reps):
        # Between two of its ssh (autossh restarts its own after a pause): wait for the next.
        deadline = time.monotonic() + 15
        while not tool.ssh_pid(name) and time.monotonic() < deadline and not (isinstance(tool, Autossh) and tool.exited(name)):
            time.sleep(0.01)
        pid = tool.ssh_pid(name)
        if not pid:
            gave_up = True
            time.sleep(3)
            break
        session = bench.bastion.session_of(pid) if kind == "drop" else None
        faults.append(time.monotonic())
        if kind == "kill":
            os.kill(pid, signal.SIGKILL)
        elif session:
            bench.bastion.drop(session)
        # The next fault after a second of a new ssh (or when the tool gave up).
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = tool.ssh_pid(name)
            if now and now != pid:
                break
            if isinstance(tool, Autossh) and tool.exited(name):
                gave_up = True
                break
            time.sleep(0.01)
        if gave_up:
            time.sleep(3)  # what clients see for a while after the tool gave up
            break
        # A second of uptime after data passes again (the new ssh is up, not
        # just spawned): a tunnel killed within a second of coming up is a
        # quick drop, which warren's budget backs off after five in a row.
        wait_echo(port, 15)
        time.sleep(1)
    attempts = client.stop()
    end = time.monotonic()
    tool.stop()
    bench.between()
    windows = per_fault(attempts, faults, end)
    return {"faults": len(faults), "gave_up": gave_up, "windows": windows,
            "refused": sum(w["refused"] for w in windows), "cut": sum(w["cut"] for w in windows),
            "attempts": sum(w["attempts"] for w in windows),
            "longest_wait": max((w["longest_wait"] for w in windows if w["longest_wait"] is not None), default=None)}


def section_clients(bench):
    reps = 5 if bench.quick else 10
    result = {}
    for kind in ("kill", "drop"):
        result[kind] = {}
        for make in (Warren, Autossh):
            r = run_one(bench, make, kind, reps)
            label = make.label
            result[kind][label] = r
            print(f"clients ({kind}): {label}: {r['attempts']} connections, {r['refused']} refused, "
                  f"{r['cut']} cut, longest wait {r['longest_wait']}, gave up: {r['gave_up']}", flush=True)
        what = "kill -9 of the ssh child" if kind == "kill" else "bastion drops the session"
        w, a = result[kind]["warren"], result[kind]["autossh"]
        note = "a client connects every 20 ms; refused = connect failed"
        if a["gave_up"]:
            note += f"; autossh had no ssh after {a['faults']} fault(s) (exited, or none within 15 s; counted until 3 s later)"
        bench.row("clients", f"refused connections through {reps} x {what}", "n", w["refused"], a["refused"], note=note)
        bench.row("clients", f"cut connections (accepted, closed before the answer), {reps} x {what}", "n", w["cut"], a["cut"])
        bench.row("clients", f"longest wait connect-to-answer, {reps} x {what}", "s", w["longest_wait"], a["longest_wait"],
                  note="among answered connections; autossh's clients are refused instead of waiting, which is no wait")
    bench.raw["clients"] = result
