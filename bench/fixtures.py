"""Set-up the bench needs: packages, the warren binary, a bastion sshd, tunnel configs."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import procs
from procs import descendants, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def ensure_packages():
    """Installs what the bench runs, when missing (root; apt-get, with a
    policy-rc.d that keeps the package from starting a system sshd)."""
    need = []
    if not os.access("/usr/sbin/sshd", os.X_OK):
        need.append("openssh-server")
    if not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        need.append("openssh-client")
    if not shutil.which("autossh"):
        need.append("autossh")
    if not shutil.which("setpriv"):
        need.append("util-linux")
    if not need:
        return
    if os.geteuid() != 0:
        sys.exit(f"bench: run as root to install {' '.join(need)}")
    log(f"installing {' '.join(need)}")
    policy = "/usr/sbin/policy-rc.d"
    made_policy = False
    if not os.path.exists(policy):
        with open(policy, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(policy, 0o755)
        made_policy = True
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + need,
                       check=True, env=env, stdout=subprocess.DEVNULL)
    finally:
        if made_policy:
            os.unlink(policy)


def build_warren(workspace):
    """`swift build -c release --product warren`; returns the binary's path."""
    swift = os.environ.get("SWIFT", "swift")
    logfile = os.path.join(workspace, "build.log")
    log("building warren (release)")
    started = time.monotonic()
    with open(logfile, "wb") as out:
        code = subprocess.run([swift, "build", "-c", "release", "--product", "warren"], cwd=ROOT,
                              stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        with open(logfile, errors="replace") as f:
            sys.stderr.write(f.read()[-4000:])
        sys.exit("bench: swift build failed")
    path = subprocess.run([swift, "build", "-c", "release", "--show-bin-path"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()
    log(f"built in {time.monotonic() - started:.1f} s")
    return os.path.join(path, "warren")


def keygen(path, comment):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path], check=True)
    os.chmod(path, 0o600)
    with open(path + ".pub") as f:
        return " ".join(f.read().split()[:2])


class Bastion:
    """One sshd on 127.0.0.1 with throwaway keys, sshd's default MaxStartups,
    shared by every tool. Its per-connection processes are its descendants."""

    def __init__(self, procs_, workspace, port):
        self.procs = procs_
        self.dir = os.path.join(workspace, "bastion")
        os.makedirs(self.dir, mode=0o700)
        self.port = port
        self.host_key = keygen(os.path.join(self.dir, "host_key"), "bench-bastion")
        self.client_key = os.path.join(self.dir, "client_key")
        client_pub = keygen(self.client_key, "bench-client")
        with open(os.path.join(self.dir, "authorized_keys"), "w") as f:
            f.write(client_pub + "\n")
        self.config = os.path.join(self.dir, "sshd_config")
        with open(self.config, "w") as f:
            f.write("\n".join([
                f"ListenAddress 127.0.0.1:{port}",
                f"HostKey {self.dir}/host_key",
                f"AuthorizedKeysFile {self.dir}/authorized_keys",
                "PidFile none",
                "UsePAM no",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "AllowTcpForwarding yes",
                "LogLevel INFO",
                "",
            ]))
        self.log = os.path.join(self.dir, "sshd.log")
        self.process = None

    def start(self):
        os.makedirs("/run/sshd", exist_ok=True)
        check = subprocess.run(["/usr/sbin/sshd", "-t", "-f", self.config], capture_output=True, text=True)
        if check.returncode != 0:
            sys.exit(f"bench: sshd -t failed: {check.stderr}")
        self.process = self.procs.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", self.config], log=self.log)
        listening = wait_until(lambda: "Server listening" in open(self.log, errors="replace").read(), 10, 0.01)
        if not listening:
            sys.exit(f"bench: sshd did not start: {open(self.log).read()}")

    @property
    def pid(self):
        return self.process.pid

    def sessions(self):
        """Every per-connection sshd process (the listener's descendants)."""
        return [p for p in descendants(self.pid) if procs.alive(p)]

    def session_of(self, client_pid):
        """The listener's child serving the ssh client `client_pid`, matched
        through the TCP connection: the client's socket to our port, and the
        sshd socket whose remote port is the client's local port."""
        inodes = procs.socket_inodes(client_pid)
        table = procs.tcp4_table()
        client_ports = {local for local, remote, state, inode in table if inode in inodes and remote == self.port}
        if not client_ports:
            return None
        server_inodes = {inode for local, remote, state, inode in table if local == self.port and remote in client_ports}
        for child in procs.children(self.pid):
            tree = [child] + descendants(child)
            if any(procs.socket_inodes(p) & server_inodes for p in tree):
                return child
        return None

    def freeze(self, session):
        """SIGSTOP one connection's processes (the listener keeps accepting)."""
        tree = [session] + descendants(session)
        for pid in tree:
            os.kill(pid, signal.SIGSTOP)
        return tree

    @staticmethod
    def thaw(tree):
        for pid in tree:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def drop(self, session):
        """The bastion drops a session: SIGKILL its processes, leaves first."""
        procs.kill_tree(session)

    def wait_idle(self, timeout=20):
        """Waits until no connection is left (so one tool's teardown does not
        load the next measurement)."""
        return wait_until(lambda: not self.sessions(), timeout, 0.02)


class Fleet:
    """N tunnels through the bastion to the echo target: a warren.toml for the
    first n of them, and each tunnel's ssh_config as `warren render` writes it,
    which autossh and bare ssh are given too (`ssh -F FILE -N warren-NAME`)."""

    def __init__(self, warren, bastion, echo_port, workspace, name, ports, keepalive=(15, 3), probe_interval=None):
        self.warren = warren
        self.bastion = bastion
        self.echo_port = echo_port
        self.dir = os.path.join(workspace, name)
        os.makedirs(self.dir, mode=0o700)
        self.ports = list(ports)
        self.names = [f"t{i:03d}" for i in range(len(self.ports))]
        self.keepalive = keepalive
        self.probe_interval = probe_interval
        self.rendered_dir = os.path.join(self.dir, "rendered")
        self.configs = {}

    def toml(self, n, overrides=None):
        """The warren.toml text for the first n tunnels; `overrides` maps a
        tunnel name to extra `key = value` lines."""
        overrides = overrides or {}
        lines = [
            f'state_dir = "{self.dir}/state"', "",
            "[defaults]",
            f"port = {self.bastion.port}",
            'user = "root"',
            f'identity_file = "{self.bastion.client_key}"',
        ]
        if self.keepalive != (15, 3):
            lines += [f"keepalive_interval = {self.keepalive[0]}", f"keepalive_count = {self.keepalive[1]}"]
        if self.probe_interval is not None:
            lines.append(f"probe_interval = {self.probe_interval}")
        for name, port in list(zip(self.names, self.ports))[:n]:
            lines += ["", f"[tunnels.{name}]", 'host = "127.0.0.1"', f'host_key = "{self.bastion.host_key}"',
                      f'local_forward = ["127.0.0.1:{port}:127.0.0.1:{self.echo_port}"]']
            lines += overrides.get(name, [])
        return "\n".join(lines) + "\n"

    def write_config(self, n, overrides=None, path=None):
        path = path or os.path.join(self.dir, f"warren-{n}.toml")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(self.toml(n, overrides))
        os.replace(tmp, path)
        return path

    def render(self, names=None, config=None, state_dir=None):
        """`warren render NAME` for each tunnel; returns {name: ssh_config path}."""
        names = names or self.names
        config = config or self.write_config(len(self.names), path=os.path.join(self.dir, "render.toml"))
        state_dir = state_dir or self.rendered_dir

        def one(name):
            out = subprocess.run([self.warren, "render", name, "--config", config, "--state-dir", state_dir],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"warren render {name} failed: {out.stderr}")
            return name, os.path.join(state_dir, "tunnels", name, "ssh_config")

        with ThreadPoolExecutor(4) as pool:
            result = dict(pool.map(one, names))
        if state_dir == self.rendered_dir:
            self.configs.update(result)
        return result

    def port(self, name):
        return self.ports[self.names.index(name)]


def without_keepalive(ssh_config, path):
    """A copy of a generated ssh_config without ServerAlive* lines: ssh's own
    default (ServerAliveInterval 0, no keepalives)."""
    with open(ssh_config) as f:
        text = f.read()
    text = re.sub(r"^\s*ServerAlive\w+ .*\n", "", text, flags=re.M)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path
