"""systemd's notify protocol (``Type=notify``, ``WatchdogSec``) without a dependency.

``kiosk serve`` under systemd gets ``$NOTIFY_SOCKET`` (and ``$WATCHDOG_USEC`` when the
unit has ``WatchdogSec``). :class:`Watchdog` then says ``READY=1`` once the server
answers its own ``/healthz`` over loopback, ``WATCHDOG=1`` every ``WATCHDOG_USEC / 2``
*only while* that request still answers in time (a server whose request threads hang
stops pinging, and systemd restarts it), and ``STOPPING=1`` on the way out. Without
``$NOTIFY_SOCKET`` nothing at all is sent and no thread is started.
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping


def notify(message: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` (``READY=1``, ``WATCHDOG=1``...) to ``$NOTIFY_SOCKET``.

    A datagram to a unix socket path, or to an abstract one when the name starts with
    ``@``. Returns whether it was sent; never raises (systemd gone is not our failure).
    """
    env = os.environ if env is None else env
    address = env.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    if address[0] == "@":
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
        return True
    except OSError:
        return False


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings (half of ``$WATCHDOG_USEC``), or None when there is no
    watchdog for this process (unset, or ``$WATCHDOG_PID`` names another process)."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 1_000_000 / 2


def http_check(host: str, port: int, path: str = "/healthz") -> Callable[[float], bool]:
    """A liveness check: ``GET path`` on the server itself answers 200 within the timeout."""
    if host in ("", "0.0.0.0", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    host = host.strip("[]")

    def check(timeout: float) -> bool:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            response = conn.getresponse()
            response.read()
            return response.status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    return check


class Watchdog:
    """READY=1 when the server first answers, then WATCHDOG=1 while it keeps answering."""

    def __init__(
        self,
        check: Callable[[float], bool],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        self.check = check
        self.enabled = bool(self.env.get("NOTIFY_SOCKET"))
        self.interval = watchdog_interval(self.env)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_server(cls, host: str, port: int) -> Watchdog:
        return cls(http_check(host, port))

    def _timeout(self) -> float:
        # Shorter than the ping interval, so a slow answer is a missed ping.
        return max(0.2, min(2.0, (self.interval or 4.0) * 0.8))

    def start(self) -> Watchdog:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        # Ready: the server listens and answers (a sleep between tries, none after).
        while not self._stop.is_set():
            if self.check(self._timeout()):
                notify("READY=1", self.env)
                break
            self._stop.wait(0.1)
        if self.interval is None:
            return
        next_at = time.monotonic()
        while not self._stop.is_set():
            next_at += self.interval
            if self.check(self._timeout()) and not self._stop.is_set():
                notify("WATCHDOG=1", self.env)
            # A check that took long does not bunch pings up afterwards.
            next_at = max(next_at, time.monotonic())
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        if not self.enabled:
            return
        self._stop.set()
        notify("STOPPING=1", self.env)
        if self._thread is not None:
            self._thread.join(timeout=5)
