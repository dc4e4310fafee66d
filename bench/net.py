"""Echo target, echo round trips through forwards, and readiness polling."""

import asyncio
import errno
import os
import selectors
import socket
import time

from procs import ListenScanner

PAYLOAD = b"warren-bench\n"


def serve_echo(port):
    """Run an asyncio echo server on 127.0.0.1:port until killed (a child process
    of the bench, so that it does not share the bench's interpreter)."""

    async def handle(reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024, reuse_address=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def echo_once(port, timeout=1.0):
    """One round trip through 127.0.0.1:port; True when the payload came back."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(PAYLOAD)
            got = b""
            while len(got) < len(PAYLOAD):
                chunk = s.recv(len(PAYLOAD) - len(got))
                if not chunk:
                    return False
                got += chunk
            return got == PAYLOAD
    except OSError:
        return False


def wait_echo(port, timeout, every=0.005, attempt_timeout=0.5, give_up=None):
    """Poll one port until an echo round trip succeeds. Returns the monotonic
    time of the success, or None (timeout, or `give_up()` said so). A refused
    connect costs a few microseconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if echo_once(port, attempt_timeout):
            return time.monotonic()
        if give_up and give_up():
            return None
        time.sleep(every)
    return None


class Held:
    """An open connection through a forward that the bench keeps and checks later."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        self.sock.settimeout(2)

    def roundtrip(self):
        try:
            self.sock.sendall(PAYLOAD)
            got = b""
            while len(got) < len(PAYLOAD):
                chunk = self.sock.recv(len(PAYLOAD) - len(got))
                if not chunk:
                    return False
                got += chunk
            return got == PAYLOAD
        except OSError:
            return False

    def close(self):
        self.sock.close()


class ReadyPoller:
    """Waits until every port passes an echo round trip. Polls cheaply: every
    `every` seconds one sock_diag dump says which ports listen; only those get a
    (non-blocking) connect, payload and echo check. Returns {port: monotonic time}."""

    def __init__(self, every=0.005, attempt_timeout=1.0):
        self.every = every
        self.attempt_timeout = attempt_timeout

    def run(self, ports, timeout, tick=None):
        """`tick(pending_ports)` is called once per round (the floor restarts exited ssh there)."""
        pending = set(ports)
        done = {}
        scanner = ListenScanner()
        sel = selectors.DefaultSelector()
        attempts = {}  # port -> (sock, started, stage, received)
        retry_at = {}
        deadline = time.monotonic() + timeout
        try:
            while pending and time.monotonic() < deadline:
                if tick:
                    tick(pending)
                now = time.monotonic()
                listening = scanner.ports()
                for port in list(pending):
                    if port in attempts or port not in listening or retry_at.get(port, 0) > now:
                        continue
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setblocking(False)
                    err = s.connect_ex(("127.0.0.1", port))
                    if err not in (0, errno.EINPROGRESS):
                        s.close()
                        retry_at[port] = now + self.every
                        continue
                    attempts[port] = [s, now, "connect", b""]
                    sel.register(s, selectors.EVENT_WRITE, port)
                wait = self.every
                end = time.monotonic() + wait
                while attempts and time.monotonic() < end:
                    for key, _ in sel.select(max(0, end - time.monotonic())):
                        port = key.data
                        a = attempts[port]
                        s = a[0]
                        ok, failed = False, False
                        try:
                            if a[2] == "connect":
                                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                                    failed = True
                                else:
                                    s.send(PAYLOAD)
                                    a[2] = "echo"
                                    sel.modify(s, selectors.EVENT_READ, port)
                            else:
                                chunk = s.recv(64)
                                if not chunk:
                                    failed = True
                                else:
                                    a[3] += chunk
                                    ok = len(a[3]) >= len(PAYLOAD)
                        except OSError:
                            failed = True
                        if ok:
                            done[port] = time.monotonic()
                            pending.discard(port)
                        if ok or failed:
                            sel.unregister(s)
                            s.close()
                            del attempts[port]
                            if failed:
                                retry_at[port] = time.monotonic() + self.every
                    now = time.monotonic()
                    for port, a in list(attempts.items()):
                        if now - a[1] > self.attempt_timeout:
                            sel.unregister(a[0])
                            a[0].close()
                            del attempts[port]
                if not attempts:
                    time.sleep(max(0, end - time.monotonic()))
        finally:
            for a in attempts.values():
                a[0].close()
            sel.close()
            scanner.close()
        return done


def free_ports(count, start=20000, end=60000, avoid=()):
    """`count` distinct ports on 127.0.0.1 that nothing listens on now,
    in one contiguous run when possible."""
    scanner = ListenScanner()
    listening = scanner.ports()
    scanner.close()
    base = start + (os.getpid() * 7) % (end - start - count - 1000)
    out = []
    port = base
    while len(out) < count:
        if port >= end:
            port = start
        if port not in listening and port not in avoid and _bindable(port):
            out.append(port)
        port += 1
    return out


def _bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
