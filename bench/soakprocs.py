"""The two long-lived processes of `make soak`: the bastion's sshd, which the
soak also stops and starts, and `warren run` with a cached view of its
status.json."""

import os
import threading
import time

import procs
from fixtures import ROOT, Bastion
from procs import wait_until
from tools import _clean_env, read_status


class SoakBastion(Bastion):
    """The bench's bastion, which can also stop (listener and every connection
    it serves, as a dying bastion would) and start again on the same port."""

    def start(self):
        offset = os.path.getsize(self.log) if os.path.exists(self.log) else 0

        def listening():
            with open(self.log, errors="replace") as f:
                f.seek(offset)
                return "Server listening" in f.read()

        os.makedirs("/run/sshd", exist_ok=True)
        self.process = self.procs.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", self.config], log=self.log)
        if not wait_until(listening, 10, 0.005):
            raise RuntimeError("the bastion's sshd did not start again")

    def stop(self):
        procs.kill_tree(self.process.pid)
        self.process.wait(5)
        self.procs.forget_exited()
        self.procs.reap_orphans()


class WarrenProcess:
    def __init__(self, soak):
        self.soak = soak
        self.state_dir = os.path.join(soak.workspace, "state")
        self.log = os.path.join(soak.workspace, "warren.log")
        self.process = None
        self.lock = threading.Lock()
        self.cached, self.read_at = {}, 0.0

    def start(self):
        env = _clean_env()
        env.setdefault("WARREN_TEMPLATES", os.path.join(ROOT, "Templates"))  # --warren may be a copy elsewhere
        self.process = self.soak.procs.spawn(
            [self.soak.warren_bin, "run", "--config", self.soak.config, "--state-dir", self.state_dir],
            log=self.log, env=env)

    def status(self):
        """status.json by tunnel; read at most once per 10 ms however many
        watchers ask (twenty watchers polling every 20 ms would otherwise keep
        a core busy parsing it on a 2-core machine)."""
        with self.lock:
            now = time.monotonic()
            if now - self.read_at > 0.01:
                self.cached, self.read_at = self._read(), now
            return self.cached

    def _read(self):
        return read_status(self.state_dir, self.process.pid)

    def ssh_pid(self, name):
        t = self.status().get(name)
        return t.get("pid") if t else None
