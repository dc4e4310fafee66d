"""What sits behind each tunnel in `make soak`: a real PostgreSQL 15 cluster or
a socat echo server, each on its own loopback port, each stoppable and
restartable on its own. `check(port)` is the end-to-end test through any port
(the target's own, or the tunnel's forward)."""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

from net import echo_once
from procs import kill_tree, wait_until

PG_BIN = "/usr/lib/postgresql/15/bin"
AS_POSTGRES = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]


def pg_query(port, timeout=1.0):
    """One `select 1` over PostgreSQL's wire protocol (protocol 3.0, trust
    auth): True when the row and ReadyForQuery came back. This is what psql
    does, without forking a client, so it can be polled every few ms."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            params = b"user\0postgres\0database\0postgres\0\0"
            s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
            reader = _Messages(s)
            if not reader.until_ready():
                return False
            query = b"select 1\0"
            s.sendall(b"Q" + struct.pack("!i", 4 + len(query)) + query)
            ok = reader.until_ready(want_row=True)
            s.sendall(b"X\0\0\0\4")
            return ok
    except OSError:
        return False


class _Messages:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(4096)
            if not chunk:
                return False
            self.buf += chunk
        return True

    def until_ready(self, want_row=False):
        """Reads messages up to ReadyForQuery; False on an error, a close, or
        an authentication request other than AuthenticationOk."""
        saw_row = False
        while True:
            if not self._fill(5):
                return False
            kind = self.buf[0:1]
            length = struct.unpack("!i", self.buf[1:5])[0]
            if not self._fill(1 + length):
                return False
            body, self.buf = self.buf[5:1 + length], self.buf[1 + length:]
            if kind == b"E":
                return False
            if kind == b"R" and struct.unpack("!i", body[:4])[0] != 0:
                return False
            if kind == b"D":
                saw_row = True
            if kind == b"Z":
                return saw_row or not want_row


def psql_ok(port, timeout=5):
    """The real client: `psql -c 'select 1'` through `port` (the final check)."""
    env = dict(os.environ, PGCONNECT_TIMEOUT=str(timeout))
    try:
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres",
                              "-Atc", "select 1"], capture_output=True, text=True, env=env, timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        return False
    return out.returncode == 0 and out.stdout.strip() == "1"


class EchoTarget:
    """`socat TCP-LISTEN:PORT,fork PIPE`: echoes whatever a connection sends."""

    kind = "echo"

    def __init__(self, procs_, workspace, port):
        self.procs = procs_
        self.port = port
        self.log = os.path.join(workspace, f"echo-{port}.log")
        self.process = None

    def check(self, port=None, timeout=1.0):
        return echo_once(port or self.port, timeout)

    def final_check(self, port):
        return echo_once(port, 3.0)

    def start(self):
        self.process = self.procs.spawn(
            ["socat", f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork,backlog=256", "PIPE"], log=self.log)
        return wait_until(lambda: self.check(timeout=0.2), 10, 0.01)

    def stop(self):
        """SIGKILL the listener and the children serving open connections."""
        if self.process and self.process.poll() is None:
            kill_tree(self.process.pid)
            self.process.wait(5)
        self.procs.reap_orphans()


class PostgresTarget:
    """A PostgreSQL 15 cluster of its own (copied from one initdb), run as the
    postgres user in the foreground, TCP on 127.0.0.1 only, trust auth."""

    kind = "postgres"

    def __init__(self, procs_, workspace, port, template):
        self.procs = procs_
        self.port = port
        self.dir = os.path.join(workspace, f"pg-{port}")
        # cp -a keeps the postgres user's ownership of every file.
        subprocess.run(["cp", "-a", template, self.dir], check=True)
        self.log = os.path.join(workspace, f"pg-{port}.log")
        self.process = None

    @staticmethod
    def make_template(workspace):
        """initdb once; each target copies the result (initdb takes seconds)."""
        path = os.path.join(workspace, "pg-template")
        os.makedirs(path, mode=0o700)
        shutil.chown(path, "postgres", "postgres")
        out = subprocess.run(AS_POSTGRES + [f"{PG_BIN}/initdb", "-D", path, "-U", "postgres", "--auth=trust",
                                            "-E", "UTF8", "--no-sync", "--no-instructions"],
                             capture_output=True, text=True, cwd="/")
        if out.returncode != 0:
            sys.exit(f"soak: initdb failed: {out.stderr}")
        return path

    def check(self, port=None, timeout=1.0):
        return pg_query(port or self.port, timeout)

    def final_check(self, port):
        return psql_ok(port)

    def start(self):
        self.process = self.procs.spawn(
            AS_POSTGRES + [f"{PG_BIN}/postgres", "-D", self.dir, "-c", "listen_addresses=127.0.0.1",
                           "-c", f"port={self.port}", "-c", "unix_socket_directories=", "-c", "shared_buffers=8MB",
                           "-c", "max_connections=40", "-c", "fsync=off", "-c", "autovacuum=off"],
            log=self.log)
        return wait_until(lambda: self.check(timeout=0.5), 30, 0.02)

    def stop(self):
        """Fast shutdown (SIGINT: ends the sessions, checkpoints, exits)."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                kill_tree(self.process.pid)
                self.process.wait(5)
        self.procs.reap_orphans()


def make_targets(procs_, workspace, ports, postgres):
    """The first `postgres` ports get a PostgreSQL cluster, the rest socat."""
    os.chmod(workspace, 0o711)  # the postgres user must reach its data directories
    template = PostgresTarget.make_template(workspace) if postgres else None
    out = []
    for i, port in enumerate(ports):
        out.append(PostgresTarget(procs_, workspace, port, template) if i < postgres
                   else EchoTarget(procs_, workspace, port))
    started = time.monotonic()
    for t in out:
        if not t.start():
            sys.exit(f"soak: the {t.kind} target on :{t.port} did not start (log {t.log})")
    return out, time.monotonic() - started
