"""Sync with the hub: push the outbox, pull the change feed, and the worker doing both.

``push_once`` and ``pull_once`` are plain functions over the database and a
:class:`~app.hubclient.HubClient`; :class:`SyncWorker` runs them in two threads with
the retry policy of docs/protocol.md. Nothing here is needed for the store to work:
without a hub, or while it is unreachable, everything waits in the outbox.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from app.core import db as dbmod
from app.store.domain import outbox, promotions
from app.store.domain.acks import ACK_HOOKS
from app.store.sync import backoff, feed, health
from app.store.sync import state as syncstate
from app.store.sync.client import MAX_BATCH, HubClient, HubError

log = logging.getLogger(__name__)

PULL_WAIT_S = 25  # long-poll: a change at the hub reaches the store in about a second
PUSH_INTERVAL_S = 1.0  # other processes (kiosk stock adjust) write the outbox too
PAGE_LIMIT = 2000  # the most the protocol allows: fewer round trips on a first sync
# Health reports (app/store/sync/health.py): one at start and every HEALTH_INTERVAL_S, and sooner
# (at most every HEALTH_MIN_GAP_S) when the outbox or the cursor changed, so head office
# sees a queue grow or a parked row resolved within seconds. KIOSK_HEALTH_INTERVAL_S
# overrides the interval (tests use 1 s).
HEALTH_INTERVAL_S = 60.0
HEALTH_MIN_GAP_S = 10.0
HEALTH_CHECK_S = 2.0  # how often the cheap "did anything change" query runs
# Bisect-and-park (docs/protocol.md, "Retries"): a transaction is parked only after
# the hub failed on it ALONE this many times, each time answering a control request.
STRIKES = 3
PARK_REASON = "hub_error"


@dataclass
class PushStats:
    """What one push round did."""

    batches: int = 0
    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    parked: int = 0


@dataclass
class PullStats:
    """What one pull round did."""

    pages: int = 0
    changes: int = 0
    applied: int = 0
    stale: int = 0
    failed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    cursor: str = "0"
    remaining: int = 0


def _wire(row: dict[str, Any]) -> dict[str, Any]:
    """An outbox row as the protocol's transaction."""
    return {
        "id": row["id"],
        "type": row["type"],
        "occurred_at": row["occurred_at"],
        "payload": row["payload"],
    }


def _send(client: HubClient, rows: list[dict[str, Any]]) -> list[tuple[dict, dict]]:
    """Send rows; pair each with its result. A batch the hub refuses as a whole (400,
    413) is split until the one transaction at fault is found and answered rejected,
    so one bad item never blocks the others."""
    try:
        results = client.post_transactions([_wire(r) for r in rows])
    except HubError as exc:
        if exc.status not in (400, 413):
            raise
        if len(rows) > 1:
            half = len(rows) // 2
            return _send(client, rows[:half]) + _send(client, rows[half:])
        reason = "too_large" if exc.status == 413 else (exc.code or "bad_request")
        return [
            (
                rows[0],
                {
                    "id": rows[0]["id"],
                    "status": "rejected",
                    "reason": reason,
                    "message": exc.message,
                },
            )
        ]
    by_id = {r.get("id"): r for r in results if isinstance(r, dict)}
    return [(row, by_id[row["id"]]) for row in rows if row["id"] in by_id]


def _record(db: Database, pairs: list[tuple[dict, dict]], stats: PushStats) -> set[str]:
    """Apply the hub's answers in one transaction; return the ids settled."""
    settled = set()
    with dbmod.write(db):
        for row, res in pairs:
            status = res.get("status")
            if status in ("accepted", "duplicate") and res.get("original_status") != "rejected":
                outbox.mark_acked(db, row["id"], res.get("result"), hooks=ACK_HOOKS)
                stats.accepted += status == "accepted"
                stats.duplicate += status == "duplicate"
            elif status in ("rejected", "duplicate"):
                outbox.park(
                    db, row["id"], res.get("reason") or "rejected", res.get("message") or ""
                )
                stats.parked += 1
            else:
                continue  # an answer we do not understand: keep the row, send it again
            settled.add(row["id"])
    return settled


def _item_may_be_at_fault(exc: HubError) -> bool:
    """A failure that could come from the batch's content: no answer (dropped, reset,
    timed out) or a 5xx. Not a 408/429 nor a Retry-After: the hub asked us to wait."""
    return exc.retryable and exc.status not in (408, 429) and exc.retry_after is None


def _hub_answers(client: HubClient) -> bool:
    """The control request: does the hub accept a batch right now (an empty one, which
    goes through signing, parsing and a write transaction like any)? If not, the hub
    is failing, not the batch: back off, blame nothing."""
    try:
        client.post_transactions([])
    except HubError:
        return False
    return True


def _failure_detail(exc: HubError) -> str:
    if exc.status is not None:
        return f"HTTP {exc.status}" + (f" {exc.code}" if exc.code else "")
    return "pas de réponse à temps" if exc.timed_out else "connexion coupée"


class Narrowing(HubError):
    """The hub failed on one transaction alone but answers a control request: the push
    is on its way to parking that transaction (after :data:`STRIKES` such failures).
    Not a sign of an outage: the worker retries after a short wait, without growing its
    backoff."""

    def __init__(self, exc: HubError, tx_id: str, strikes: int) -> None:
        super().__init__(
            f"the hub failed {strikes} of {STRIKES} times on transaction {tx_id} alone "
            f"({exc.message}); it is set aside for staff after {STRIKES}",
            status=exc.status,
            code=exc.code,
            timed_out=exc.timed_out,
        )
        self.tx_id = tx_id
        self.strikes = strikes


def push_once(
    db: Database,
    client: HubClient,
    *,
    owner: str | None = None,
    batch_size: int = MAX_BATCH,
    max_batches: int | None = None,
) -> PushStats:
    """Send every pending outbox row (oldest first, in batches); raise HubError if the
    hub cannot be reached (the rows stay queued).

    When the hub fails on a batch (a 5xx, no answer) yet accepts a control request
    right after, the batch is to blame: the batch is bisected (the older half is sent,
    then the rest of the failing part is split again) until one transaction fails
    alone; after :data:`STRIKES` such failures it is parked with the reason, and
    everything else goes on. Rows always leave in outbox order. The search is kept in
    ``meta`` (syncstate.NARROWING), so a restart resumes it; rows are only ever
    acknowledged by the hub's answer, so nothing is lost or applied twice.
    """
    owner = owner or outbox.owner_id()
    stats = PushStats()
    # Outlive the slowest answer (a split batch makes several requests under one lease).
    timeout = getattr(client, "connect_timeout", 5) + getattr(client, "read_timeout", 30)
    lease_s = max(outbox.LEASE_SECONDS, int(3 * timeout))
    while max_batches is None or stats.batches < max_batches:
        limit = min(batch_size, MAX_BATCH)
        state = syncstate.narrowing(db)
        upto = None
        if state is not None:
            if not outbox.unsettled(db, state["last"]):
                # Settled meanwhile (the feed acknowledged it, head office discarded it):
                # the window is gone; a batch that still fails starts a new search.
                syncstate.set_narrowing(db, None)
                continue
            upto = state["last"]
            window = len(outbox.pending(db, MAX_BATCH, upto=upto))
            # The older half first; one row alone once the window is down to it.
            limit = min(limit, max(1, window // 2))
        rows = outbox.lease(db, limit, owner=owner, seconds=lease_s, upto=upto)
        if not rows:
            break
        ids = [r["id"] for r in rows]
        try:
            pairs = _send(client, rows)
        except HubError as exc:
            outbox.release(db, ids, owner, error=exc.message)
            if not _item_may_be_at_fault(exc):
                raise
            if not _hub_answers(client):
                # The hub is failing, not this batch: back off, blame nothing. Earlier
                # failures of a row alone are forgotten too: they were seen on a hub
                # that fails now and then, not proof against that row.
                if state and state.get("strikes"):
                    syncstate.set_narrowing(db, {**state, "strikes": 0})
                raise
            stats.batches += 1
            stats.sent += len(rows)
            if len(rows) > 1:
                syncstate.set_narrowing(
                    db, {"last": ids[-1], "size": len(rows), "strikes": 0, "error": exc.message}
                )
                log.warning(
                    "the hub failed on a batch of %d (%s) but answers: narrowing it down",
                    len(rows),
                    exc.message,
                )
                continue
            strikes = 1 + (int(state.get("strikes") or 0) if state and upto == ids[0] else 0)
            if strikes >= STRIKES:
                message = (
                    f"le serveur central a échoué {strikes} fois sur cette transaction seule : "
                    f"{_failure_detail(exc)}"
                )
                with dbmod.write(db):
                    outbox.park(db, ids[0], PARK_REASON, message)
                    syncstate.set_narrowing(db, None)
                stats.parked += 1
                log.warning("parked transaction %s: %s (%s)", ids[0], message, exc.message)
                continue
            syncstate.set_narrowing(
                db, {"last": ids[0], "size": 1, "strikes": strikes, "error": exc.message}
            )
            log.warning("the hub failed on transaction %s alone (%d/%d)", ids[0], strikes, STRIKES)
            raise Narrowing(exc, ids[0], strikes) from exc
        except BaseException:
            outbox.release(db, ids, owner)
            raise
        settled = _record(db, pairs, stats)
        outbox.release(db, [i for i in ids if i not in settled], owner)
        stats.batches += 1
        stats.sent += len(rows)
        if upto is not None and upto in settled:
            # The whole window went through: whatever failed was not one of these rows.
            syncstate.set_narrowing(db, None)
            log.info("the batch the hub failed on went through in parts: nothing to set aside")
        if not settled:
            break  # the hub answered nothing usable: do not spin on the same rows
    return stats


def pull_once(
    db: Database,
    client: HubClient,
    *,
    wait: int = 0,
    limit: int = PAGE_LIMIT,
    own_store_id: str | None = None,
    progress: Callable[[PullStats], None] | None = None,
    stop: threading.Event | None = None,
) -> PullStats:
    """Fetch and apply pages until the hub says there is no more; raise HubError."""
    own = own_store_id or dbmod.get_meta(db, syncstate.STORE_ID)
    stats = PullStats(cursor=syncstate.cursor(db))
    while True:
        page = client.get_changes(stats.cursor, wait=wait if stats.pages == 0 else 0, limit=limit)
        counts = feed.apply_page(db, page, own, first=stats.pages == 0)
        stats.pages += 1
        stats.changes += len(page["changes"])
        stats.applied += counts["applied"]
        stats.stale += counts["stale"]
        stats.failed += counts["failed"]
        for kind, n in counts["skipped"].items():
            stats.skipped[kind] = stats.skipped.get(kind, 0) + n
        stats.cursor = syncstate.cursor(db)
        stats.remaining = int(page.get("remaining") or 0)
        if progress:
            progress(stats)
        if not page.get("more") or (stop is not None and stop.is_set()):
            # Banner images announced on the feed, fetched now so kiosks show them offline.
            promotions.fetch_missing_images(db, client)
            return stats


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
            syncstate.claim_store(db, self.store_id)
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
            taken = syncstate.take_retry_request(db)
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
            syncstate.record_failure(db, message, name)
        except Exception:
            log.exception("cannot record the sync failure")
        wait = backoff.delay(
            attempt, retry_after=retry_after, retryable=retryable, cap=self.cap, rng=self.rng
        )
        log.warning("%s failed (%s); next try in %.1fs", name, message, wait)
        return wait

    def _note_success(self, db: Database) -> None:
        try:
            syncstate.record_success(db, "push")
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
                syncstate.record_success(db, "push")
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
            syncstate.record_success(db, "pull")

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
    return (row[0], row[1], syncstate.cursor(db))
