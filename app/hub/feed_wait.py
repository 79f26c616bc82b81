"""One waiter per hub process for the change feed's long-polls (issue 11).

A held ``GET /api/v1/changes`` used to re-query the newest seq every 150 ms itself: with
1,000 stores that is 6,600 queries a second just to wait. Here a single background
poller (a greenlet under ``kiosk hub serve``'s gevent server, a thread otherwise) reads
``max(seq)`` every ``interval`` seconds (read-only, one cheap query, which also sees
commits by other processes and the CLI) and wakes every held request when it grows; each
request then reads its own page from the table, as before.

It is written with :mod:`threading` primitives so it works unchanged with real threads
(waitress, Flask's test client) and, once gevent has patched them, with greenlets.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from app.hub.domain import changes

log = logging.getLogger(__name__)

#: Seconds between wakes per held long-poll (1,000 held: a wake every 1.5 s at most).
GAP_PER_WAITER_S = 0.0015
MAX_GAP_S = 1.5


class Overloaded(Exception):
    """More long-polls are held than this process is set to serve."""


class FeedWaiter:
    """Wakes the held long-polls of one process when the feed's newest seq grows."""

    def __init__(self, data_dir: str | Path, interval: float, max_waiters: int | None) -> None:
        self.data_dir = str(data_dir)
        self.interval = interval
        self.max_waiters = max_waiters
        self.waiting = 0  # long-polls held right now
        self.last: int | None = None  # the newest seq the poller saw
        self._cond = threading.Condition()
        self._started = False
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="feed-waiter", daemon=True).start()

    def _run(self) -> None:
        from app.hub.storage import open_db

        db = open_db(self.data_dir)
        while True:
            try:
                seq = changes.last_seq(db)
            except Exception:  # a locked or busy database: try again next tick
                log.exception("feed waiter: reading the last seq failed")
            else:
                if seq != self.last:
                    with self._cond:
                        self.last = seq
                        self._cond.notify_all()
            # Every wake sends each held poll back (and it comes back at once): with many
            # waiters, wake less often so the process is not flooded with re-polls.
            time.sleep(min(MAX_GAP_S, max(self.interval, self.waiting * GAP_PER_WAITER_S)))

    def wait_past(self, seq: int, timeout: float) -> bool:
        """Wait until the feed's newest seq is past ``seq`` or ``timeout`` s have gone;
        True when it is. Raises :class:`Overloaded` past ``max_waiters`` held waits."""
        self._start()
        with self._cond:
            if self.last is not None and self.last > seq:
                return True
            if self.max_waiters is not None and self.waiting >= self.max_waiters:
                raise Overloaded
            self.waiting += 1
            try:
                return self._cond.wait_for(
                    lambda: self.last is not None and self.last > seq, timeout
                )
            finally:
                self.waiting -= 1


_waiters: dict[tuple[str, float, int | None], FeedWaiter] = {}
_waiters_lock = threading.Lock()


def waiter_for(data_dir: str | Path, interval: float, max_waiters: int | None) -> FeedWaiter:
    """This process's waiter for a hub data directory (made on first use)."""
    key = (str(data_dir), float(interval), max_waiters)
    with _waiters_lock:
        waiter = _waiters.get(key)
        if waiter is None:
            waiter = _waiters[key] = FeedWaiter(data_dir, interval, max_waiters)
        return waiter


__all__ = ["FeedWaiter", "Overloaded", "waiter_for"]
