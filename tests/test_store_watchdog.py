"""systemd's watchdog: ``kiosk serve`` says READY=1 once it answers, WATCHDOG=1 every
WATCHDOG_USEC/2 while its own /healthz answers, and STOPPING=1 on the way out.

The test listens on a unix datagram socket as systemd would (``$NOTIFY_SOCKET``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.store import notify


class NotifyListener:
    """A unix datagram socket standing in for systemd's notify socket."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.address = address

    def receive(self, seconds: float) -> list[tuple[float, str]]:
        """Every message that arrives within ``seconds`` (with its arrival time)."""
        got: list[tuple[float, str]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                break
            got.append((time.monotonic(), data.decode()))
        return got

    def wait_for(self, message: str, seconds: float) -> list[str]:
        """Messages up to and including ``message``; fails if it does not come in time."""
        seen: list[str] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                text = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            seen.append(text)
            if text == message:
                return seen
        raise AssertionError(f"{message!r} never came; got {seen}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener():
    short = Path(tempfile.mkdtemp(prefix="nfy", dir="/tmp"))  # unix paths: 108 bytes
    sock = NotifyListener(str(short / "notify.sock"))
    yield sock
    sock.close()
    os.unlink(short / "notify.sock")
    short.rmdir()


def test_serve_ready_then_pings_stop_when_frozen_and_resume(server_factory, store_data, listener):
    server = server_factory(
        store_data, env={"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "1000000"}
    )
    assert listener.wait_for("READY=1", 10)[-1] == "READY=1"

    pings = [m for _, m in listener.receive(2.6)]
    # every 0.5 s: about five in 2.6 s; nothing else is said meanwhile
    assert set(pings) == {"WATCHDOG=1"} and 3 <= len(pings) <= 7, pings

    # A frozen server (every thread stopped, as a deadlock would leave it) stops pinging:
    # systemd (WatchdogSec=1) would kill and restart it.
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        listener.receive(0.3)  # a ping already on its way
        assert listener.receive(2.5) == []
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    # Back, it answers again and the pings come back.
    assert listener.wait_for("WATCHDOG=1", 5)[-1] == "WATCHDOG=1"
    assert [m for _, m in listener.receive(1.5)].count("WATCHDOG=1") >= 2

    server.proc.terminate()
    server.proc.wait(timeout=10)
    assert "STOPPING=1" in [m for _, m in listener.receive(0.5)]


def test_serve_stops_pinging_while_its_database_is_wedged(server_factory, store_data, listener):
    """A running server that cannot answer: another process holds every WAL lock of the
    store database (as a stuck writer or a hung disk would), so /healthz blocks. The
    process is alive and its socket accepts connections, yet no ping goes out; once the
    locks are let go it answers and the pings resume."""
    server = server_factory(
        store_data, env={"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "1000000"}
    )
    assert listener.wait_for("READY=1", 10)[-1] == "READY=1"
    assert listener.wait_for("WATCHDOG=1", 3)[-1] == "WATCHDOG=1"

    fd = os.open(str(store_data / "kiosk.db-shm"), os.O_RDWR)
    try:
        # SQLite's WAL locks: bytes 120-127 of the -shm file (write, checkpoint,
        # recover, the five read marks). Held exclusively, no reader can start.
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 8, 120)
        listener.receive(0.6)  # a check answered just before
        assert listener.receive(2.5) == []
        assert server.proc.poll() is None  # alive...
        with socket.create_connection(("127.0.0.1", server.port), timeout=1):
            pass  # ...and accepting, but not answering
    finally:
        os.close(fd)  # lets every lock go
    assert listener.wait_for("WATCHDOG=1", 15)[-1] == "WATCHDOG=1"
    assert [m for _, m in listener.receive(1.5)].count("WATCHDOG=1") >= 2


def test_serve_without_notify_socket_sends_nothing(server_factory, store_data, listener):
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    server_factory(store_data, env={**env, "WATCHDOG_USEC": "1000000"})
    # the listener exists, but nobody was told of it: nothing arrives
    assert listener.receive(1.5) == []
    assert notify.Watchdog(lambda _t: True, env={"WATCHDOG_USEC": "1000000"}).enabled is False


class _Health(BaseHTTPRequestHandler):
    hang = threading.Event()  # set: the app "hangs" (until the test ends, i.e. never)
    over = threading.Event()  # set when the test ends: a hung handler goes away quietly

    def do_GET(self) -> None:  # noqa: N802
        if self.hang.is_set():
            self.over.wait(30)
        # The client gave up long ago: no traceback printed later, during another test
        # (in Python 3.11 a traceback's carets come from ast.parse, which is not safe
        # while another thread parses: the stateful sync test failed on it once).
        with contextlib.suppress(OSError):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


def test_no_ping_while_healthz_does_not_answer(listener):
    """The pinger asks the server's /healthz each time: a server whose socket still
    accepts but whose request handling hangs (what SIGSTOP cannot show apart from a
    frozen process) gets no ping; pings resume when it answers again. Here the
    "server" is a small HTTP server whose handler is made to hang; the abstract
    socket form (``@name``) of $NOTIFY_SOCKET is used."""
    abstract = NotifyListener("@kiosk-test-" + uuid.uuid4().hex)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    env = {"NOTIFY_SOCKET": abstract.address, "WATCHDOG_USEC": "1000000"}
    dog = notify.Watchdog(notify.http_check("0.0.0.0", httpd.server_address[1]), env=env)
    try:
        dog.start()
        assert abstract.wait_for("READY=1", 5)[-1] == "READY=1"
        assert [m for _, m in abstract.receive(1.6)].count("WATCHDOG=1") >= 2

        _Health.hang.set()
        abstract.receive(0.6)  # a check already answered
        assert abstract.receive(2.5) == []  # /healthz hangs: no ping at all

        _Health.hang.clear()
        assert abstract.wait_for("WATCHDOG=1", 5)[-1] == "WATCHDOG=1"
    finally:
        _Health.hang.clear()
        _Health.over.set()
        dog.stop()
        httpd.shutdown()
        httpd.server_close()
    assert "STOPPING=1" in [m for _, m in abstract.receive(0.5)]
    abstract.close()


def test_notify_unset_or_foreign_pid_is_silent():
    assert notify.notify("READY=1", env={}) is False
    assert notify.watchdog_interval({"WATCHDOG_USEC": "1000000"}) == 0.5
    assert notify.watchdog_interval({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}) is None
    assert notify.watchdog_interval({}) is None
