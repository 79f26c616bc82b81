"""The sync worker: threads that push the outbox, pull the change feed and report
health, each with its own connection and the retry policy of docs/protocol.md.

One round of each is a plain function: :func:`app.store.sync.push.push_once`,
:func:`app.store.sync.pull.pull_once`, :func:`app.store.sync.health.build_report`.
Nothing here is needed for the store to work: without a hub, or while it is
unreachable, everything waits in the outbox.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from app.core import db as dbmod
from app.store.domain import outbox
from app.store.sync import backoff, health, state
from app.store.sync.client import HubClient, HubError
from app.store.sync.pull import pull_once
from app.store.sync.push import Narrowing, push_once

log = logging.getLogger(__name__)

PULL_WAIT_S = 25  # long-poll: a change at the hub reaches the store in about a second
PUSH_INTERVAL_S = 1.0  # other processes (kiosk stock adjust) write the outbox too
# Health reports (app/store/sync/health.py): one at start and every HEALTH_INTERVAL_S,
# and sooner (at most every HEALTH_MIN_GAP_S) when the outbox or the cursor changed, so
# head office sees a queue grow or a parked row resolved within seconds.
# KIOSK_HEALTH_INTERVAL_S overrides the interval (tests use 1 s).
HEALTH_INTERVAL_S = 60.0
HEALTH_MIN_GAP_S = 10.0
HEALTH_CHECK_S = 2.0  # how often the cheap "did anything change" query runs


class SyncWorker:
    """Two threads: one pushes the outbox, one long-polls the change feed.

    Each has its own connection and its own backoff, so a hub refusing transactions
    still delivers catalog changes and the other way round.
    """

    def __init__(
        self,
        db_path: str | Path,
        client: HubClient,
        *,
        store_id: str,
        wait: int = PULL_WAIT_S,
        push_interval: float = PUSH_INTERVAL_S,
        cap: float = backoff.CAP_S,
        rng: random.Random | None = None,
        health_interval: float | None = None,
    ) -> None:
        self.db_path = str(db_path)
        if health_interval is None:
            health_interval = float(os.environ.get("KIOSK_HEALTH_INTERVAL_S") or HEALTH_INTERVAL_S)
        self.health_interval = max(0.2, health_interval)
        self.client = client
        self.store_id = store_id
        self.wait = wait
        self.push_interval = push_interval
        self.cap = cap
        self.rng = rng or random.Random()
        self.owner = outbox.owner_id()
        self._stop = threading.Event()
        self._wake = {
            "push": threading.Event(),
            "pull": threading.Event(),
            "health": threading.Event(),
        }
        self._threads: list[threading.Thread] = []

    def start(self) -> SyncWorker:
        """Claim the store identity, free leases of dead processes, start both loops."""
        db = dbmod.connect(self.db_path)
        try:
            state.claim_store(db, self.store_id)
            freed = outbox.release_dead(db)
            if freed:
                log.info("freed %d outbox rows leased by a process that died", freed)
        finally:
            db.close()
        loops = (("push", self._push_loop), ("pull", self._pull_loop))
        for name, loop in (*loops, ("health", self._health_loop)):
            t = threading.Thread(target=self._run, args=(name, loop), name=f"sync-{name}")
            t.daemon = True  # a long-poll in flight must not hold the process at exit
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Ask both loops to finish and wait a little; a pending long-poll is abandoned
        (every write is a whole transaction, so leaving mid-request loses nothing)."""
        self._stop.set()
        for event in self._wake.values():
            event.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def retry_now(self) -> None:
        """Skip the current backoff wait (the staff's "retry now")."""
        for event in self._wake.values():
            event.set()

    @property
    def stopped(self) -> bool:
        """True once stop() was called."""
        return self._stop.is_set()

    # -- loops ------------------------------------------------------------------------

    def _run(self, name: str, loop: Callable[[Database], None]) -> None:
        db = dbmod.connect(self.db_path)
        try:
            loop(db)
        finally:
            db.close()

    def _pause(self, db: Database, name: str, seconds: float) -> None:
        """Wait ``seconds``, waking early on stop or a staff retry (seen within 1 s even
        when asked from another process, through the meta flag)."""
        event = self._wake[name]
        remaining = seconds
        while remaining > 0 and not self._stop.is_set():
            step = min(1.0, remaining)
            if event.wait(step):
                event.clear()
                return
            remaining -= step
            if name == "push" and self._take_retry(db):
                return

    def _take_retry(self, db: Database) -> bool:
        try:
            taken = state.take_retry_request(db)
        except Exception:  # a locked database must not stop the loop
            log.exception("cannot read the retry flag")
            return False
        if taken:
            self._wake["pull"].set()
        return taken

    def _failed(self, db: Database, name: str, exc: Exception, attempt: int) -> float:
        retry_after = getattr(exc, "retry_after", None)
        retryable = getattr(exc, "retryable", True)
        message = getattr(exc, "message", None) or f"{exc.__class__.__name__}: {exc}"
        try:
            state.record_failure(db, message, name)
        except Exception:
            log.exception("cannot record the sync failure")
        wait = backoff.delay(
            attempt, retry_after=retry_after, retryable=retryable, cap=self.cap, rng=self.rng
        )
        log.warning("%s failed (%s); next try in %.1fs", name, message, wait)
        return wait

    def _note_success(self, db: Database) -> None:
        try:
            state.record_success(db, "push")
        except Exception:  # a locked database must not stop the loop
            log.exception("cannot record the sync success")

    def _push_loop(self, db: Database) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._take_retry(db)
            try:
                stats = push_once(db, self.client, owner=self.owner)
            except Narrowing as exc:
                # The hub answers; one transaction fails alone. Try it again soon (a
                # short, growing wait per strike), the usual backoff stays at rest.
                attempt = 0
                self._note_success(db)
                wait = backoff.delay(exc.strikes - 1, cap=self.cap, rng=self.rng)
                log.warning("push: %s; next try in %.1fs", exc.message, wait)
                self._pause(db, "push", wait)
                continue
            except Exception as exc:  # noqa: BLE001 - one failure never ends the loop
                if not isinstance(exc, HubError):
                    log.exception("push failed")
                self._pause(db, "push", self._failed(db, "push", exc, attempt))
                attempt += 1
                continue
            attempt = 0
            if stats.batches:
                state.record_success(db, "push")
                log.info("pushed %s", stats)
            self._pause(db, "push", self.push_interval)

    def _pull_loop(self, db: Database) -> None:
        attempt = 0
        connected = False
        while not self._stop.is_set():
            # Until a round succeeds, ask without waiting: a long-poll on an up-to-date
            # feed would keep the store "offline" for `wait` seconds after the link is up.
            wait = self.wait if connected else 0
            try:
                pull_once(db, self.client, wait=wait, own_store_id=self.store_id, stop=self._stop)
            except Exception as exc:  # noqa: BLE001 - one failure never ends the loop
                if not isinstance(exc, HubError):
                    log.exception("pull failed")
                self._pause(db, "pull", self._failed(db, "pull", exc, attempt))
                attempt += 1
                connected = False
                continue
            attempt = 0
            connected = True
            state.record_success(db, "pull")

    def _health_loop(self, db: Database) -> None:
        """Report health at start, every health_interval, and soon after a change."""
        data_dir = Path(self.db_path).parent
        last_sent = -1e9
        last_mark: tuple | None = None
        min_gap = min(HEALTH_MIN_GAP_S, self.health_interval)
        while not self._stop.is_set():
            try:
                mark = _health_mark(db)
            except Exception:  # a locked database must not stop the loop
                log.exception("cannot read the outbox for the health report")
                mark = last_mark
            since = time.monotonic() - last_sent
            if since >= self.health_interval or (mark != last_mark and since >= min_gap):
                try:
                    self.client.report_health(health.build_report(db, data_dir))
                    last_mark = mark
                except Exception as exc:  # noqa: BLE001 - reporting never ends the loop
                    # Not a sync failure: an older hub without /health must not make
                    # the store look offline to its staff.
                    log.info("health report not sent: %s", getattr(exc, "message", exc))
                last_sent = time.monotonic()
            if self._wake["health"].wait(min(HEALTH_CHECK_S, self.health_interval)):
                self._wake["health"].clear()  # stop() or a staff "retry now"


def _health_mark(db: Database) -> tuple:
    """What, when it changes, is worth an early health report: outbox and cursor."""
    row = db.execute(
        "SELECT count(*) FILTER (WHERE parked_reason IS NULL), "
        "count(*) FILTER (WHERE parked_reason IS NOT NULL) FROM outbox WHERE acked_at IS NULL"
    ).fetchone()
    return (row[0], row[1], state.cursor(db))
