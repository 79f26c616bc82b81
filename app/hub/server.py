"""``kiosk hub serve``'s event-driven server: gevent's WSGI server (issue 11).

Under waitress every held long-poll (``GET /api/v1/changes?wait=25``) held one of a fixed
pool of threads, so past ~32 stores posts queued behind them. Here each connection is a
greenlet: a held long-poll costs a few KB, not a thread, and waits on the process's one
feed waiter (app/hub/feed_wait.py). The caller must have run ``gevent.monkey.patch_all()``
before importing the app (so thread-locals, locks and sleeps are greenlet-aware).

Body limits: the app refuses a Content-Length past its area's limit from the headers
(``security.limit_bodies``), and werkzeug stops reading a chunked body at the limit.
gevent would then read and discard the rest of the body to keep the connection; here a
413 closes the connection instead, after a short lingering close (the rest of the body
let through and dropped, never parsed: ``_linger``) so the client reads its 413.

SQLite under gevent: a sqlite3 call holds the loop while it runs (it does not yield), so
statements must stay short; waits for the write lock and a durable commit's fsync run
off the loop (app/hub/database.py). ``--workers N`` forks N such processes sharing the
listening socket (``serve``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from flask import Flask

from app.web import security


def raise_fd_limit() -> int:
    """Lift the soft open-files limit to the hard one (each store holds a socket)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


#: After a 413, how long and how much of the unread body is let through and dropped.
LINGER_S = 2.0
LINGER_BYTES = 64 * 1024 * 1024
#: The longest request line the hub reads (a longer one is answered 414).
MAX_REQUEST_LINE = security.MAX_REQUEST_LINE


def _linger(sock: Any) -> None:
    """A lingering close after a 413 sent while the client is still sending its body:
    closing at once would make the kernel answer the unread bytes with a reset, and the
    client could lose the 413 it has not read yet. So: no more writes, then let the rest
    of the body through and drop it (never parsed nor kept), for at most LINGER_S
    seconds and LINGER_BYTES bytes, as web servers do (nginx's lingering_close)."""
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(0.5)
        deadline, dropped = time.monotonic() + LINGER_S, 0
        while time.monotonic() < deadline and dropped < LINGER_BYTES:
            chunk = sock.recv(65536)
            if not chunk:
                return
            dropped += len(chunk)
    except OSError:
        pass  # the client went away: nothing to linger for


def make_server(app: Flask, listener: Any, *, log: Any = None) -> Any:
    """A gevent WSGI server for ``app`` on ``listener`` (a bound socket, or a
    ``(host, port)`` address), not yet started."""
    from gevent import pywsgi
    from gevent.pywsgi import WSGIHandler, WSGIServer

    # The server-wide backstop, as under waitress: no request line or header past 64 KB.
    # gevent's own limit on the request line is 8 KB (a module constant, read by its
    # handler): a console link carrying a long ?next= got 414 where waitress served it.
    pywsgi.MAX_REQUEST_LINE = MAX_REQUEST_LINE

    class Handler(WSGIHandler):
        def handle(self) -> None:
            # gevent writes a response's headers and body in two sends: with Nagle's
            # algorithm on, the body waits for the client's delayed ACK, ~40 ms per
            # request on a kept-alive connection (a store's long-poll loop, a browser).
            with contextlib.suppress(OSError):
                self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().handle()

        def get_environ(self) -> dict[str, Any]:
            environ = super().get_environ()
            environ["RAW_URI"] = self.path  # the request target as sent (what was signed)
            if environ.get("CONTENT_LENGTH") is None and self.wsgi_input is not None:
                if self.wsgi_input.chunked_input:
                    security.dechunk_body(app, environ)
            return environ

        def start_response(self, status: str, headers: list, exc_info: Any = None) -> Any:
            if status.startswith("413"):
                # The rest of the body is still on the wire: say so, and never read it.
                headers = [(k, v) for k, v in headers if k.lower() != "connection"]
                headers.append(("Connection", "close"))
            return super().start_response(status, headers, exc_info)

        def run_application(self) -> None:
            try:
                super().run_application()
            finally:
                if getattr(self, "code", None) == 413 and self.wsgi_input is not None:
                    self.close_connection = True
                    # gevent's Input._discard() reads nothing once this is set.
                    self.wsgi_input._chunked_input_error = True
                    _linger(self.socket)

    # Header lines are bounded by its parser (http.client: 64 KB a line, 100 headers).
    server = WSGIServer(
        listener,
        app,
        handler_class=Handler,
        log=log,
        error_log=logging.getLogger("kiosk.hub.server"),
    )
    return server


def serve(
    app: Flask,
    host: str,
    port: int,
    *,
    workers: int = 1,
    access_log: bool = False,
    in_worker: Callable[[int], None] | None = None,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM. With ``workers`` > 1 the listening socket is
    opened here and shared by that many forked worker processes (the kernel spreads the
    connections); a worker that dies is started again. ``in_worker(index)`` runs in each
    worker as it starts (worker 0 runs the process-wide jobs, such as the mailer)."""
    from gevent import socket as gsocket

    logging.basicConfig()
    fds = raise_fd_limit()
    listener = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_STREAM)
    listener.setsockopt(gsocket.SOL_SOCKET, gsocket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    bound = listener.getsockname()[1]
    print(
        f"Serving on http://{host}:{bound} (gevent, {workers} worker"
        f"{'s' if workers > 1 else ''}; {fds} open files allowed)",
        file=sys.stderr,
        flush=True,
    )
    if workers <= 1:
        _serve_worker(app, listener, 0, access_log, in_worker)
        return
    _supervise(app, listener, workers, access_log, in_worker)


def _serve_worker(
    app: Flask,
    listener: Any,
    index: int,
    access_log: bool,
    in_worker: Callable[[int], None] | None,
) -> None:
    import gevent
    import gevent.event

    if in_worker is not None:
        in_worker(index)
    server = make_server(app, listener, log=sys.stderr if access_log else None)
    server.start()
    stopping = gevent.event.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(sig, stopping.set)
    stopping.wait()
    server.stop(timeout=2)


def _supervise(
    app: Flask,
    listener: Any,
    workers: int,
    access_log: bool,
    in_worker: Callable[[int], None] | None,
) -> None:
    """Fork the workers, start again any that dies, stop them all on SIGINT/SIGTERM."""
    children: dict[int, int] = {}  # pid -> worker index
    stopping = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker: gevent's patched fork re-initialised its loop
            code = 0
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                _serve_worker(app, listener, index, access_log, in_worker)
            except BaseException:
                logging.getLogger("kiosk.hub.server").exception("worker %d failed", index)
                code = 1
            finally:
                os._exit(code)
        children[pid] = index

    def stop(_sig: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for index in range(workers):
        spawn(index)
    restarts: list[float] = []
    while children:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        index = children.pop(pid, None)
        if index is None or stopping:
            continue
        # A worker died: start it again, unless workers keep dying (a broken config).
        now = time.monotonic()
        restarts = [t for t in restarts if now - t < 60] + [now]
        print(
            f"hub worker {index} (pid {pid}) exited ({status}); starting it again",
            file=sys.stderr,
            flush=True,
        )
        if len(restarts) > 5 * workers:
            print("hub workers keep dying: stopping", file=sys.stderr, flush=True)
            stop(signal.SIGTERM, None)
            continue
        spawn(index)


__all__ = ["make_server", "raise_fd_limit", "serve"]
