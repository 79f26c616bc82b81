"""Push the outbox to the hub: send in batches, and bisect-and-park a transaction the
hub keeps failing on alone (docs/protocol.md, "Retries").

:func:`push_once` is a plain function over the database and a
:class:`~app.store.sync.client.HubClient`; the worker (app/store/sync/worker.py) runs
it in a loop with the retry policy. Rows are only ever acknowledged by the hub's
answer (through the acknowledgement hooks of app/store/domain/acks.py), so nothing is
lost or applied twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from app.core import db as dbmod
from app.core.protocol import MAX_BATCH
from app.store.domain import outbox
from app.store.domain.acks import ACK_BATCH_HOOKS, ACK_HOOKS
from app.store.sync import state
from app.store.sync.client import HubClient, HubError

log = logging.getLogger(__name__)

# Bisect-and-park (docs/protocol.md, "Retries"): a transaction is parked only after
# the hub failed on it ALONE this many times, each time answering a control request.
STRIKES = 3
PARK_REASON = "hub_error"
# A request's body stays within this: the hub refuses a body over 4 MiB (docs/protocol.md,
# 413 body_too_large); a batch is as many rows as the protocol allows (MAX_BATCH) when
# the backlog has them, fewer when they would weigh more than this.
BATCH_BYTES = 4 * 1024 * 1024 - 64 * 1024


@dataclass
class PushStats:
    """What one push round did."""

    batches: int = 0
    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    parked: int = 0


def _wire(row: dict[str, Any]) -> str:
    """An outbox row (leased raw: its payload the stored JSON text) as the protocol's
    transaction, in JSON."""
    return (
        f'{{"id":{json.dumps(row["id"])},"type":{json.dumps(row["type"])},'
        f'"occurred_at":{json.dumps(row["occurred_at"])},"payload":{row["payload"]}}}'
    )


def _within_body_limit(db: Database, rows: list[dict], owner: str) -> list[dict]:
    """The oldest of ``rows`` whose request body stays within :data:`BATCH_BYTES` (one
    at least: a row too big alone is the hub's to refuse); the others go back to the
    queue, first of the next batch. Each kept row carries its JSON text ("wire")."""
    size, kept = len('{"transactions":[]}'), 0
    for row in rows:
        row["wire"] = _wire(row)
        size += len(row["wire"].encode()) + 1
        if size > BATCH_BYTES and kept:
            break
        kept += 1
    if kept < len(rows):
        outbox.release(db, [r["id"] for r in rows[kept:]], owner)
    return rows[:kept]


def _send(client: HubClient, rows: list[dict[str, Any]]) -> list[tuple[dict, dict]]:
    """Send rows; pair each with its result. A batch the hub refuses as a whole (400,
    413) is split until the one transaction at fault is found and answered rejected,
    so one bad item never blocks the others."""
    try:
        results = client.post_transaction_texts([r.get("wire") or _wire(r) for r in rows])
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
    """Apply the hub's answers in one transaction; return the ids settled. The
    acknowledgements are recorded set-based, a few statements for the whole batch
    (outbox.mark_acked_many), not a handful per row."""
    settled = set()
    acks: list[tuple[str, dict | None]] = []
    with dbmod.write(db):
        for row, res in pairs:
            status = res.get("status")
            if status in ("accepted", "duplicate") and res.get("original_status") != "rejected":
                acks.append((row["id"], res.get("result")))
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
        outbox.mark_acked_many(db, acks, hooks=ACK_HOOKS, batch_hooks=ACK_BATCH_HOOKS)
    return settled


def _settles_all(rows: list[dict], pairs: list[tuple[dict, dict]]) -> bool:
    """Whether every row got an answer :func:`_record` settles (in memory, no database)."""
    settling = ("accepted", "duplicate", "rejected")
    return len({row["id"] for row, res in pairs if res.get("status") in settling}) == len(rows)


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
    ``meta`` (state.NARROWING), so a restart resumes it; rows are only ever
    acknowledged by the hub's answer, so nothing is lost or applied twice.

    A batch is as many rows as are queued, up to ``batch_size`` (at most MAX_BATCH) and
    :data:`BATCH_BYTES`; a backlog of several batches goes through :class:`_Stream`.
    """
    owner = owner or outbox.owner_id()
    stats = PushStats()
    # Outlive the slowest answer (a split batch makes several requests under one lease).
    timeout = getattr(client, "connect_timeout", 5) + getattr(client, "read_timeout", 30)
    lease_s = max(outbox.LEASE_SECONDS, int(3 * timeout))
    stream = _Stream(db, client, owner, lease_s, stats)
    try:
        _push(db, client, owner, lease_s, stats, stream, batch_size, max_batches)
    except BaseException:
        with contextlib.suppress(Exception):
            stream.settle()  # answers received are kept, whatever failed after them
        raise
    else:
        stream.settle()
    finally:
        stream.close()
    return stats


class _Stream:
    """A backlog drained batch after batch, the store's own database work done while
    the hub works: batch k is in flight (sent from a helper thread) while batch k-1's
    answers are recorded and batch k+1 is leased here. One batch in flight at a time:
    rows still leave in outbox order, each sent after the previous one was answered.
    Only while no narrowing is on (its search stays one request at a time)."""

    def __init__(self, db: Database, client: HubClient, owner: str, lease_s: int, stats) -> None:
        self.db, self.client, self.owner, self.lease_s, self.stats = (
            db,
            client,
            owner,
            lease_s,
            stats,
        )
        self.pool: ThreadPoolExecutor | None = None
        self.answered: tuple[list[dict], list[tuple[dict, dict]]] | None = None
        self.ahead: list[dict] | None = None  # the next batch, leased during a flight
        self.stalled = False  # an answer settled nothing: stop after the batch in flight

    def settle(self) -> None:
        """Record the answers received and not recorded yet."""
        if self.answered is not None:
            rows, pairs = self.answered
            settled = _record(self.db, pairs, self.stats)
            self.answered = None
            outbox.release(self.db, [r["id"] for r in rows if r["id"] not in settled], self.owner)
            self.stalled = self.stalled or not settled

    def send(self, rows: list[dict], next_limit: int) -> list[tuple[dict, dict]]:
        """Send ``rows``; meanwhile record the previous answers and lease the next batch
        (``next_limit`` rows; 0: none)."""
        if self.answered is None and not next_limit:
            return _send(self.client, rows)
        if self.pool is None:
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="kiosk-push")
        flight = self.pool.submit(_send, self.client, rows)
        answered, counted = self.answered, dict(vars(self.stats))
        try:
            with dbmod.write(self.db):  # one commit for both
                self.settle()
                if next_limit and not self.stalled:
                    self.ahead = outbox.lease(
                        self.db, next_limit, owner=self.owner, seconds=self.lease_s, raw=True
                    )
        except BaseException:
            # Rolled back whole: those answers are unrecorded (their rows given back by
            # close()), and nothing was leased ahead.
            self.answered, self.ahead = answered, None
            vars(self.stats).update(counted)  # not recorded: not counted either
            with contextlib.suppress(Exception):
                flight.result()  # applied or not at the hub: the rows go again, as duplicates
            raise
        try:
            return flight.result()
        except BaseException:
            self.give_back()
            raise

    def give_back(self) -> None:
        """Release the batch leased ahead (its turn never came)."""
        if self.ahead:
            outbox.release(self.db, [r["id"] for r in self.ahead], self.owner)
        self.ahead = None

    def close(self) -> None:
        # Whatever is left leased by this round (an error on the way) goes back.
        held = [r["id"] for r in self.answered[0]] if self.answered else []
        held += [r["id"] for r in self.ahead or []]
        self.answered = self.ahead = None
        if held:
            outbox.release(self.db, held, self.owner)
        if self.pool is not None:
            self.pool.shutdown(wait=False)


def _push(
    db: Database,
    client: HubClient,
    owner: str,
    lease_s: int,
    stats: PushStats,
    stream: _Stream,
    batch_size: int,
    max_batches: int | None,
) -> None:
    """push_once's rounds (its docstring); ``stream`` overlaps the common case."""
    while max_batches is None or stats.batches < max_batches:
        limit = min(batch_size, MAX_BATCH)
        narrowed = state.narrowing(db)
        upto = None
        if narrowed is not None:
            stream.settle()
            stream.give_back()
            if not outbox.unsettled(db, narrowed["last"]):
                # Settled meanwhile (the feed acknowledged it, head office discarded it):
                # the window is gone; a batch that still fails starts a new search.
                state.set_narrowing(db, None)
                continue
            upto = narrowed["last"]
            window = len(outbox.pending(db, MAX_BATCH, upto=upto))
            # The older half first; one row alone once the window is down to it.
            limit = min(limit, max(1, window // 2))
        if stream.ahead is not None:
            rows, stream.ahead = stream.ahead, None
        else:
            rows = outbox.lease(db, limit, owner=owner, seconds=lease_s, upto=upto, raw=True)
        rows = _within_body_limit(db, rows, owner)
        if not rows:
            break
        ids = [r["id"] for r in rows]
        last_round = max_batches is not None and stats.batches + 1 >= max_batches
        try:
            if upto is None:
                pairs = stream.send(rows, 0 if last_round or stream.stalled else limit)
            else:
                pairs = _send(client, rows)
        except HubError as exc:
            outbox.release(db, ids, owner, error=exc.message)
            if not _item_may_be_at_fault(exc):
                raise
            if not _hub_answers(client):
                # The hub is failing, not this batch: back off, blame nothing. Earlier
                # failures of a row alone are forgotten too: they were seen on a hub
                # that fails now and then, not proof against that row.
                if narrowed and narrowed.get("strikes"):
                    state.set_narrowing(db, {**narrowed, "strikes": 0})
                raise
            stats.batches += 1
            stats.sent += len(rows)
            if len(rows) > 1:
                state.set_narrowing(
                    db, {"last": ids[-1], "size": len(rows), "strikes": 0, "error": exc.message}
                )
                log.warning(
                    "the hub failed on a batch of %d (%s) but answers: narrowing it down",
                    len(rows),
                    exc.message,
                )
                continue
            strikes = 1 + (int(narrowed.get("strikes") or 0) if narrowed and upto == ids[0] else 0)
            if strikes >= STRIKES:
                message = (
                    f"le serveur central a échoué {strikes} fois sur cette transaction seule : "
                    f"{_failure_detail(exc)}"
                )
                with dbmod.write(db):
                    outbox.park(db, ids[0], PARK_REASON, message)
                    state.set_narrowing(db, None)
                stats.parked += 1
                log.warning("parked transaction %s: %s (%s)", ids[0], message, exc.message)
                continue
            state.set_narrowing(
                db, {"last": ids[0], "size": 1, "strikes": strikes, "error": exc.message}
            )
            log.warning("the hub failed on transaction %s alone (%d/%d)", ids[0], strikes, STRIKES)
            raise Narrowing(exc, ids[0], strikes) from exc
        except BaseException:
            outbox.release(db, ids, owner)
            raise
        stats.batches += 1
        stats.sent += len(rows)
        if upto is None:
            # Recorded while the next batch is in flight, or when the round ends.
            stream.answered = (rows, pairs)
            if not _settles_all(rows, pairs):
                # A row the hub left unanswered goes again before any younger one:
                # recorded now, and the batch leased past it given back.
                stream.settle()
                stream.give_back()
            if stream.stalled:
                break  # the hub answered nothing usable: do not spin on the same rows
            continue
        settled = _record(db, pairs, stats)
        outbox.release(db, [i for i in ids if i not in settled], owner)
        if upto in settled:
            # The whole window went through: whatever failed was not one of these rows.
            state.set_narrowing(db, None)
            log.info("the batch the hub failed on went through in parts: nothing to set aside")
        if not settled:
            break  # the hub answered nothing usable: do not spin on the same rows
