"""One waiter per hub process for the change feed's long-polls (issue 11).

A held ``GET /api/v1/changes`` used to re-query the newest seq every 150 ms itself: with
1,000 stores that is 6,600 queries a second just to wait. Here one background waiter per
process learns that the feed grew and wakes every held request, which then reads its own
page from the table (the wake-up carries nothing):

- on PostgreSQL it LISTENs on :data:`app.hub.domain.changes.NOTIFY_CHANNEL`;
  ``append_change`` NOTIFYs inside the writing transaction, delivered at commit, so a
  woken request always finds the row, whichever hub process wrote it. It also re-reads
  the newest seq every :data:`PG_RECHECK_S` in case a notification was lost with a
  dropped connection (it then reconnects).
- on SQLite it reads ``max(seq)`` every ``interval`` seconds (one cheap read-only query
  per process, which also sees commits by other processes and the CLI).

Every wake sends each held poll back to the database and then to its store, which polls
again at once: with many held polls the waiter leaves at least ``GAP_PER_WAITER_S`` per
held poll between two wakes (1,000 held: 1.5 s), so a burst of changes is one wake, not
one per change. A lone change still wakes everyone within ``interval``.

It is written with :mod:`threading` primitives so it works unchanged with real threads
(waitress, Flask's test client) and, once gevent has patched them, with greenlets.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from app.hub import database as hdb
from app.hub import recent_changes
from app.hub.domain import changes

log = logging.getLogger(__name__)

#: Seconds between wakes per held long-poll (1,000 held: a wake every 1.5 s at most).
GAP_PER_WAITER_S = 0.0015
MAX_GAP_S = 1.5
#: On PostgreSQL, the newest seq is re-read this often even without a notification.
PG_RECHECK_S = 2.0
RECONNECT_S = 1.0
#: A waiter no request has used for this long stops (the next long-poll starts it again).
IDLE_STOP_S = 60.0


class Overloaded(Exception):
    """More long-polls are held than this process is set to serve."""


class FeedWaiter:
    """Wakes the held long-polls of one process when the feed's newest seq grows."""

    def __init__(self, target: str | Path, interval: float, max_waiters: int | None) -> None:
        self.target = target
        self.interval = interval
        self.max_waiters = max_waiters
        self.waiting = 0  # long-polls held right now
        self.last: int | None = None  # the newest seq the waiter has woken polls for
        self._cond = threading.Condition()
        self._started = False
        self._lock = threading.Lock()
        self._woke_at = 0.0
        self._used = 0.0  # when a request last waited (monotonic)

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="feed-waiter", daemon=True).start()

    def _idle(self) -> bool:
        """True (and the waiter marked stopped) when no request has waited for a while."""
        with self._lock:
            if self.waiting == 0 and time.monotonic() - self._used > IDLE_STOP_S:
                self._started = False
                return True
            return False

    def _run(self) -> None:
        while not self._idle():
            try:
                db = hdb.connect(self.target)
            except Exception:
                log.exception("feed waiter: cannot open the hub database; retrying")
                time.sleep(RECONNECT_S)
                continue
            try:
                if hdb.is_pg(db):
                    self._listen(db)
                else:
                    self._poll(db)
                return  # stopped for idleness (marked so by _idle)
            except Exception:  # a dropped connection, a busy database: start again
                log.exception("feed waiter: reading the feed failed; reconnecting")
                time.sleep(RECONNECT_S)
            finally:
                try:
                    db.close()
                except Exception:
                    pass

    def _poll(self, db: hdb.Db) -> None:
        while not self._idle():
            self._seen(db)
            time.sleep(self.interval)

    def _listen(self, db: hdb.Db) -> None:
        conn = db.conn
        conn.execute(f"LISTEN {changes.NOTIFY_CHANNEL}")
        self._seen(db)
        while not self._idle():
            # Returns on the first notification (a commit that appended a change) or
            # after the recheck period; either way the table says what is new.
            for _ in conn.notifies(timeout=PG_RECHECK_S, stop_after=1):
                pass
            self._seen(db)

    def _seen(self, db: hdb.Db) -> None:
        seq = changes.last_seq(db)
        if seq == self.last:
            return
        # Leave room between wakes when many polls are held (module docstring).
        gap = min(MAX_GAP_S, self.waiting * GAP_PER_WAITER_S)
        pause = self._woke_at + gap - time.monotonic()
        if pause > 0 and self.last is not None:
            time.sleep(pause)
            seq = changes.last_seq(db)
        # Load the new changes once, here, rather than in the first woken request.
        recent_changes.recent_for(self.target).refresh(db)
        with self._cond:
            self.last = seq
            self._woke_at = time.monotonic()
            self._cond.notify_all()

    def wait_past(self, seq: int, timeout: float) -> bool:
        """Wait until the feed's newest seq is past ``seq`` or ``timeout`` s have gone;
        True when it is. Raises :class:`Overloaded` past ``max_waiters`` held waits."""
        self._used = time.monotonic()
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


def waiter_for(target: str | Path, interval: float, max_waiters: int | None) -> FeedWaiter:
    """This process's waiter for a hub database (made on first use)."""
    key = (str(target), float(interval), max_waiters)
    with _waiters_lock:
        waiter = _waiters.get(key)
        if waiter is None:
            waiter = _waiters[key] = FeedWaiter(target, interval, max_waiters)
        return waiter


__all__ = ["FeedWaiter", "Overloaded", "waiter_for"]
