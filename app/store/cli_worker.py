"""``kiosk worker``: the store's background work in a process of its own.

The sync loops (push the outbox, pull the change feed), the health reporter
(app/store/sync/worker.py) and the timers (expiries, what the store forgets:
app/store/jobs.py) must run exactly once per store however many web workers serve it.
``kiosk serve`` starts this command beside its web workers (app/store/server.py); a
systemd unit may run it on its own. A lock file in the data directory
(:data:`LOCK_NAME`, holding the pid) makes a second one refuse to start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import click

from app.core import db as dbmod
from app.store.cli_options import data_option, hub_client, hub_options, open_store

LOCK_NAME = "kiosk-worker.lock"


class AlreadyRunning(click.ClickException):
    exit_code = 3


#: Set by ``kiosk serve`` (app/store/server.py): the pid of the arbiter that started us.
PARENT_ENV = "KIOSK_WORKER_PARENT"
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Be killed the moment the arbiter that started us dies (even by SIGKILL): a kiosk
    worker must never outlive its server, syncing on its own (Linux's prctl)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died before the prctl
        raise SystemExit(1)


@contextlib.contextmanager
def worker_lock(data: Path, wait: float = 0.0) -> Iterator[Path]:
    """Hold ``DATA/kiosk-worker.lock`` (flock: released when the process ends, even
    killed), waiting up to ``wait`` seconds for it; raise :class:`AlreadyRunning` when
    another process holds it."""
    path = Path(data) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                other = os.pread(fd, 32, 0).decode(errors="replace").strip()
                raise AlreadyRunning(
                    f"another kiosk worker (pid {other or '?'}) already runs for {data}"
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)


#: Set by ``kiosk serve``: a pipe to write one byte to once the timers ran once.
READY_FD_ENV = "KIOSK_WORKER_READY_FD"


def _say_ready() -> None:
    fd = os.environ.pop(READY_FD_ENV, "")
    if fd.isdigit():
        with contextlib.suppress(OSError):
            os.write(int(fd), b"1")
            os.close(int(fd))


def run_background(data: Path, client, store_id: str | None, stop: threading.Event) -> None:
    """The timers, and the sync worker when a hub is configured, until ``stop``. Once
    the timers' first round is done (orders past their day expired...), ``kiosk serve``
    is told, so its web workers never show what that round changes."""
    from app.store.jobs import ExpiryTimer

    worker = None
    if client is not None:
        from app.store.sync.worker import SyncWorker

        worker = SyncWorker(dbmod.db_path(data), client, store_id=store_id).start()
    expiry = ExpiryTimer(dbmod.db_path(data)).start()
    expiry.first_round.wait(30)
    _say_ready()
    try:
        while not stop.wait(1.0):  # wakes for the signal handlers too
            pass
    finally:
        expiry.stop()
        if worker is not None:
            worker.stop()


@click.command()
@data_option
@hub_options
def worker(
    data: Path,
    hub_url: str | None,
    store_id: str | None,
    store_secret: str | None,
    hub_timeout: float,
) -> None:
    """Run the store's background work alone: the sync with the hub and its health
    reports, the expiry and reservation timers. ``kiosk serve`` starts one; at most one
    runs per data directory."""
    parent = os.environ.get(PARENT_ENV, "")
    if parent.isdigit():
        die_with_parent(int(parent))
    client = hub_client(hub_url, store_id, store_secret, hub_timeout)
    open_store(data).close()
    stop = threading.Event()

    def _stop(signum, frame) -> None:  # SIGTERM (the arbiter, systemd), Ctrl-C
        stop.set()

    # Under kiosk serve, the one before us (killed with its arbiter) may be a moment
    # from gone; started by hand, a second one refuses at once.
    with worker_lock(data, wait=10.0 if parent else 0.0):
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        what = f"syncing with {hub_url} as {store_id}" if client else "no hub"
        click.echo(f"kiosk worker for {data} ({what}), pid {os.getpid()}", err=True)
        run_background(data, client, store_id, stop)


if __name__ == "__main__":  # how kiosk serve starts it: without the rest of the CLI
    worker(prog_name="kiosk worker", auto_envvar_prefix=None)
