"""``kiosk serve``'s multi-process server: gunicorn web workers and one ``kiosk worker``.

One Python process serves one request at a time (the interpreter lock), so on the
store's 2-core box the second core idled while eight tablets queued. Here the process
started by ``kiosk serve`` (systemd's main process) is gunicorn's arbiter: it loads the
app once (``preload_app``: the workers share its pages of memory, copy-on-write), binds
the port and forks ``--workers`` web workers (``gthread``: ``--threads`` each); gunicorn
restarts a worker that dies or hangs past its timeout.

Everything that must run exactly once per store (the sync loops, the health reporter,
the expiry and reservation timers) runs in ONE more process, ``kiosk worker``
(app/store/cli_worker.py), which the arbiter starts, restarts when it dies and stops on
the way out: :class:`Sidecar`. ``kiosk worker`` also holds a lock file in the data
directory, so a second one (a unit started by hand) refuses to run.

systemd: READY=1 and the watchdog pings come from the arbiter (the main process), by
:class:`app.store.notify.Watchdog` checking ``/healthz`` through the port, as under
waitress; ``$NOTIFY_SOCKET`` is taken out of the environment first, so gunicorn's own
early READY=1 (sent before any worker answers) and every child say nothing.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import logging
import os
import platform
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.http import message as gunicorn_message
from gunicorn.http import wsgi as gunicorn_wsgi

from app.web import security

log = logging.getLogger(__name__)

#: The longest request line gunicorn reads (the app answers 414 past 64 KiB).
REQUEST_LINE_CAP = 2 * security.MAX_REQUEST_LINE
#: How long a stopping web worker may finish its requests (systemd waits for all).
GRACEFUL_TIMEOUT_S = 5
#: A web worker silent this long (a request hung past it) is killed and replaced.
WORKER_TIMEOUT_S = 30
#: How long ``kiosk serve`` waits for the kiosk worker's first round of timers.
READY_WAIT_S = 30.0
#: A ``kiosk worker`` that keeps dying is started again at most this often.
SIDECAR_RESTART_GAP_S = 1.0
#: A web worker gives the memory its requests freed back to the system at most this often.
TRIM_EVERY_S = 1.0
#: glibc's malloc arenas per process (its default: 8 per core), for threaded web workers.
MALLOC_ARENAS = 2


def default_workers() -> int:
    """One web worker per core (the store's box has 2)."""
    return max(1, os.cpu_count() or 1)


class Sidecar:
    """The one ``kiosk worker`` process: started, restarted when it died, stopped."""

    def __init__(self, argv: list[str], env: Mapping[str, str]) -> None:
        self.argv = argv
        self.env = dict(env)
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.stopping = False

    def start(self, wait_ready: float = 0.0) -> None:
        """Start it; with ``wait_ready``, wait up to that long for its timers' first
        round (as under waitress, where they ran before the first request)."""
        self.started_at = time.monotonic()
        read, write = os.pipe()
        env = {
            **self.env,
            "KIOSK_WORKER_PARENT": str(os.getpid()),  # cli_worker.PARENT_ENV
            "KIOSK_WORKER_READY_FD": str(write),  # cli_worker.READY_FD_ENV
        }
        try:
            self.proc = subprocess.Popen(self.argv, env=env, pass_fds=(write,))
        finally:
            os.close(write)
        try:
            if wait_ready:
                ready, _, _ = select.select([read], [], [], wait_ready)
                if not ready:
                    log.warning("kiosk worker not ready after %.0f s", wait_ready)
        finally:
            os.close(read)
        log.info("kiosk worker started (pid %s)", self.proc.pid)

    def check(self) -> None:
        """Start it again when it ended (poll() also sees a child gunicorn reaped)."""
        if self.stopping or self.proc is None or self.proc.poll() is None:
            return
        if time.monotonic() - self.started_at < SIDECAR_RESTART_GAP_S:
            return
        log.warning(
            "kiosk worker (pid %s) ended (%s): starting it again",
            self.proc.pid,
            self.proc.returncode,
        )
        self.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping = True
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class _Arbiter(Arbiter):
    """gunicorn's arbiter, also looking after the sidecar on each turn of its loop."""

    sidecar: Sidecar | None = None

    def manage_workers(self) -> None:
        super().manage_workers()
        if self.sidecar is not None:
            self.sidecar.check()


class StoreServer(BaseApplication):
    """gunicorn run from Python: the app built once in the arbiter, options from here."""

    def __init__(
        self,
        load: Callable[[], Flask],
        options: dict[str, Any],
        sidecar: Sidecar | None = None,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self._load = load
        self.options = options
        self.sidecar = sidecar
        self._on_exit = on_exit
        super().__init__()

    def load_config(self) -> None:
        # Answers say ``Server: kiosk`` as under waitress (``ident``), not gunicorn's name
        # (gunicorn has no setting for it: its module's constant is what it sends).
        gunicorn_wsgi.SERVER = "kiosk"
        # gunicorn's most is 8,190 (a module constant its settings are clamped to; 0,
        # "unlimited", reads a line of any length into memory, copying it each read).
        gunicorn_message.MAX_REQUEST_LINE = REQUEST_LINE_CAP
        for key, value in self.options.items():
            self.cfg.set(key, value)

        def when_ready(arbiter: Arbiter) -> None:  # listening, no web worker yet
            if self.sidecar is not None:
                self.sidecar.start(wait_ready=READY_WAIT_S)

        def on_exit(arbiter: Arbiter) -> None:
            if self.sidecar is not None:
                self.sidecar.stop()
            if self._on_exit is not None:
                self._on_exit()

        self.cfg.set("when_ready", when_ready)
        self.cfg.set("on_exit", on_exit)

    def load(self) -> Any:
        app = close_after_413(self._load())
        # What the arbiter loaded is shared with every web worker until written to: out of
        # the collector's reach, a worker's collections do not write to (copy) its pages.
        gc.collect()
        gc.freeze()
        return app

    def run(self) -> None:
        limit_malloc_arenas()  # before any fork: every web worker inherits it
        arbiter = _Arbiter(self)
        arbiter.sidecar = self.sidecar
        arbiter.run()


def warm(app: Flask) -> None:
    """Serve a request or two in the arbiter before it forks (none touching the
    database: a connection must not cross a fork): the URL map compiled, the first
    request's lazy imports done once and shared by every web worker, so a fresh or
    restarted worker answers its first request as fast as the others."""
    client = app.test_client()
    for path in ("/_ping", "/kiosk/heartbeat"):
        client.get(path)


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None)


def limit_malloc_arenas() -> None:
    """A web worker's threads share :data:`MALLOC_ARENAS` malloc arenas instead of one
    each: memory one thread freed serves the next (issue 15's memory budget). glibc only."""
    if platform.libc_ver()[0] != "glibc":
        return  # -8 is M_ARENA_MAX in glibc's numbering only
    with contextlib.suppress(OSError, AttributeError):
        _libc().mallopt(-8, MALLOC_ARENAS)


class MemoryTrim:
    """gunicorn's ``post_request``: what a request freed (SQLite's statements, the page's
    strings) stays resident in glibc's arenas, counted in the worker's RSS, until
    ``malloc_trim`` gives it back: ~0.1-1 ms, after the answer is sent, at most once per
    :data:`TRIM_EVERY_S` in each worker."""

    def __init__(self) -> None:
        self.last = 0.0
        try:
            self.trim = _libc().malloc_trim
        except (OSError, AttributeError):  # not glibc
            self.trim = None

    def __call__(self, worker: Any, req: Any, environ: Any, resp: Any) -> None:
        now = time.monotonic()
        if self.trim is not None and now - self.last >= TRIM_EVERY_S:
            self.last = now
            self.trim(0)


def close_after_413(app: Flask) -> Callable[..., Any]:
    """The app, closing the connection after a 413 (as under waitress): the rest of a
    body refused from its headers is never read as a next request. gunicorn's answer
    then says ``Connection: close`` and its close lingers (its ``close_graceful``), so
    the client reads the 413 before the unread body could reset the connection."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if _request_line_length(environ) > security.MAX_REQUEST_LINE:
            environ[security.URI_TOO_LONG_ENV] = True  # the app's 414 page, as the hub's
        elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            security.dechunk_body(app, environ)

        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            if status.startswith("413"):
                force_close = getattr(
                    getattr(start_response, "__self__", None), "force_close", None
                )
                if force_close is not None:  # gunicorn's Response
                    force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wsgi


def _request_line_length(environ: dict[str, Any]) -> int:
    """The length of ``GET /target HTTP/1.1``, as the hub's server limits it."""
    parts = ("REQUEST_METHOD", "RAW_URI", "SERVER_PROTOCOL")
    return sum(len(environ.get(k, "")) for k in parts) + 2


def bind_address(host: str, port: int) -> str:
    """gunicorn's ``bind``: ``[::1]:8000`` for an IPv6 address."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def options(host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    """gunicorn's settings for the store (see the module docstring)."""
    return {
        "bind": [bind_address(host, port)],
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "preload_app": True,
        # No keep-alive: a kept connection stays with the worker that accepted it, so
        # two busy tablets could queue on one core while the other idles. A new
        # connection per request goes to whichever worker is free to accept it (on the
        # store's LAN a connection costs well under a millisecond).
        "keepalive": 0,
        # A scanned cart's code travels in the address (/scan?code=…, ~1,000 characters),
        # a staff link its ?next=: as the hub, request lines up to 64 KiB are served, a
        # longer one gets the app's own 414 page (close_after_413), and past
        # REQUEST_LINE_CAP gunicorn stops reading and answers its bare 414.
        "limit_request_line": REQUEST_LINE_CAP,
        "timeout": WORKER_TIMEOUT_S,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "proc_name": "kiosk-serve",
        "post_request": MemoryTrim(),
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        # Proxy headers from nobody: the store is reached directly (waitress cleared them).
        "forwarded_allow_ips": "",
        "worker_abort": abort_now,
    }


def abort_now(worker: Any) -> None:
    """gunicorn's hook when a web worker gets SIGABRT (systemd's watchdog signal, and
    gunicorn's own on a worker past its timeout): end it now, after writing where every
    thread stood. gunicorn's way out (SystemExit) waits for the request threads, and a
    request wedged on the database would keep the process, and the unit, alive."""
    faulthandler.dump_traceback(all_threads=True)
    os._exit(1)


def worker_argv(data: str) -> list[str]:
    """The ``kiosk worker`` command for this data directory (hub settings by environment)."""
    # Its own module, not ``python -m app``: the kiosk worker needs neither Flask nor
    # the hub's and the demo's commands, and every MB counts four times over.
    return [sys.executable, "-m", "app.store.cli_worker", "--data", data]


def quiet_children(env: dict[str, str]) -> None:
    """Take systemd's notify variables out of ``env`` (the arbiter's Watchdog kept a copy):
    gunicorn's early READY=1 and the children then say nothing to systemd."""
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(name, None)
