"""Processes the bench starts, /proc readers, and cleanup that leaves nothing behind.

Every process the bench starts goes through `Procs.spawn`, in a session of its
own, and is recorded. The bench is also a child subreaper (PR_SET_CHILD_SUBREAPER),
so that processes orphaned by a killed parent (an autossh's ssh, an sshd
session) are re-parented to the bench rather than to PID 1, which on these
machines never reaps them: `Procs.cleanup` kills what is left and reaps all of it.
"""

import ctypes
import os
import signal
import struct
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def set_child_subreaper():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_CHILD_SUBREAPER = 36
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except OSError:
        return False


# ---------------------------------------------------------------- /proc readers

def stat(pid):
    """(ppid, state, utime+stime ticks, comm) of a process, or None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    comm = data[data.index("(") + 1:data.rindex(")")]
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime, stime are fields 14, 15.
    return int(fields[1]), fields[0], int(fields[11]) + int(fields[12]), comm


def alive(pid):
    """Running and not a zombie."""
    s = stat(pid)
    return s is not None and s[1] not in ("Z", "X")


def cpu_ticks(pid):
    s = stat(pid)
    return s[2] if s else 0


def comm(pid):
    s = stat(pid)
    return s[3] if s else None


def cmdline(pid):
    """The process's arguments, or [] when gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def thread_files(pid, name):
    """(tid, text) of /proc/PID/task/TID/NAME for every thread of `pid` that
    could be read (threads come and go while this reads)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/{name}") as f:
                text = f.read()
        except OSError:
            continue
        yield tid, text


def children(pid):
    """Direct children, from every thread's children list (a multi-threaded
    parent's children hang off the thread that forked them)."""
    return [int(x) for _, text in thread_files(pid, "children") for x in text.split()]


def descendants(pid):
    """Every descendant, parents before their children."""
    out, todo = [], [pid]
    while todo:
        for child in children(todo.pop(0)):
            out.append(child)
            todo.append(child)
    return out


def memory_kb(pid):
    """{'rss': kB, 'pss': kB or None, 'threads': n} of a live process."""
    out = {"rss": None, "pss": None, "threads": None}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    out["rss"] = int(line.split()[1])
                elif line.startswith("Threads:"):
                    out["threads"] = int(line.split()[1])
    except OSError:
        return out
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["pss"] = int(line.split()[1])
                    break
    except OSError:
        pass
    return out


def socket_inodes(pid):
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def tcp4_table():
    """[(local_port, remote_port, state, inode)] of IPv4 TCP sockets."""
    rows = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            rows.append((int(p[1].split(":")[1], 16), int(p[2].split(":")[1], 16), int(p[3], 16), int(p[9])))
    return rows


# ------------------------------------------------- listening ports via sock_diag

class ListenScanner:
    """Which TCP ports listen on IPv4, through a NETLINK_SOCK_DIAG dump
    filtered to LISTEN in the kernel: cheap enough to run every few ms while
    hundreds of connections exist (reading /proc/net/tcp would list them all)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4)  # NETLINK_SOCK_DIAG
        self.sock.bind((0, 0))
        self.seq = 0

    def ports(self):
        self.seq += 1
        # struct inet_diag_req_v2: family, protocol, ext, pad, states, inet_diag_sockid (48 bytes)
        req = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 1 << 10) + b"\0" * 48
        # struct nlmsghdr: len, type (SOCK_DIAG_BY_FAMILY 20), flags (REQUEST | DUMP), seq, pid
        self.sock.send(struct.pack("=IHHII", 16 + len(req), 20, 0x1 | 0x300, self.seq, 0) + req)
        found = set()
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, offset)
                if kind == 3:  # NLMSG_DONE
                    return found
                if kind == 2:  # NLMSG_ERROR
                    raise OSError("sock_diag dump failed")
                # inet_diag_msg: family, state, timer, retrans, then id.sport (big-endian)
                found.add(struct.unpack_from("!H", data, offset + 16 + 4)[0])
                offset += (length + 3) & ~3

    def close(self):
        self.sock.close()


# ------------------------------------------------------------------ processes

class Procs:
    """Every process the bench starts, so that all of them can be stopped."""

    def __init__(self):
        self.started = []  # Popen, in start order
        self.me = os.getpid()

    def spawn(self, argv, log=None, env=None, stdin=subprocess.DEVNULL):
        out = open(log, "ab") if log else subprocess.DEVNULL
        try:
            p = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                                 env=env, start_new_session=True, close_fds=True)
        finally:
            if log:
                out.close()
        self.started.append(p)
        return p

    def forget_exited(self):
        self.started = [p for p in self.started if p.poll() is None]

    def reap_orphans(self):
        """Reap dead processes that were re-parented to the bench (it is a subreaper)."""
        known = {p.pid for p in self.started}
        for child in children(self.me):
            if child in known:
                continue
            s = stat(child)
            if s and s[1] == "Z":
                try:
                    os.waitpid(child, os.WNOHANG)
                except ChildProcessError:
                    pass

    def stop(self, p, sig=signal.SIGTERM, grace=5.0):
        """Signal one started process, wait for it, then SIGKILL what is left of its tree."""
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                kill_tree(p.pid)
                p.wait(5)
        self.reap_orphans()

    def cleanup(self):
        """Stop everything: SIGTERM to each started process (newest first), then
        SIGKILL any descendant or orphan left, leaves first, and reap all."""
        for p in reversed(self.started):
            if p.poll() is None:
                try:
                    # Thaw first: a SIGSTOPped process would not act on SIGTERM.
                    for pid in descendants(p.pid):
                        os.kill(pid, signal.SIGCONT)
                    os.kill(p.pid, signal.SIGCONT)
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for p in reversed(self.started):
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in reversed(self.started):
            if p.poll() is None:
                kill_tree(p.pid)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        # Orphans re-parented to the bench: kill them, leaves first, and reap.
        for _ in range(50):
            left = [c for c in children(self.me) if c not in {p.pid for p in self.started if p.poll() is None}]
            if not left:
                break
            for c in left:
                kill_tree(c)
                try:
                    os.waitpid(c, os.WNOHANG)
                except ChildProcessError:
                    pass
            time.sleep(0.05)
        self.started = []


def kill_tree(root, sig=signal.SIGKILL):
    """SIGKILL a process and its descendants, leaves first. The root is
    stopped first so that it forks nothing meanwhile: a listening sshd would
    otherwise accept a client reconnecting in that moment (warren does within
    milliseconds of a refusal) and fork a session that outlives the kill,
    reparented away from the tree."""
    try:
        os.kill(root, signal.SIGSTOP)
    except ProcessLookupError:
        pass
    for _ in range(3):
        tree = descendants(root)
        if not tree:
            break
        for pid in reversed(tree):
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    try:
        os.kill(root, sig)
        os.kill(root, signal.SIGCONT)
    except ProcessLookupError:
        pass


def wait_until(condition, timeout, every=0.005):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(every)
