"""The outbox: what the hub must learn, queued on disk until the hub acknowledges it.

Rows are written by the domain functions through :func:`enqueue` (e.g. from
:func:`app.store.domain.stock.record_movement`) in the same transaction as the local
change. A row leaves the queue only when the hub answered ``accepted`` or ``duplicate``
(acked) or ``rejected`` (parked for a human), or when the hub kept failing on that one
row alone (parked too, by app/store/sync/push.py). A sending worker first *leases* its
rows, so two workers flushing at once send different rows; the hub's idempotency on the
transaction id is the real guarantee against doubles. This module knows no transaction
type: what a type does when its row is settled is its acknowledgement hook, listed in
app/store/domain/acks.py.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod

# Longer than the slowest request (connect 5 s + read 30 s): a live worker's lease
# never runs out under it. A crashed worker's lease is freed at once by release_dead().
LEASE_SECONDS = 90

_PENDING = "acked_at IS NULL AND parked_reason IS NULL"


def enqueue(
    db: Database,
    type: str,
    payload: dict[str, Any],
    *,
    id: str | None = None,
    order_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """Queue a transaction for the hub and return its id (a new UUID unless given).

    The one way a row enters the outbox. Call it inside the caller's ``dbmod.write(db)``
    transaction, next to the local change it reports: both are kept, or neither.
    """
    tx_id = id or str(uuid.uuid4())
    stamp = _now(now)
    # Plain SQL: sqlite-utils' insert reads the schema each time.
    db.execute(
        "INSERT INTO outbox (id, type, occurred_at, payload, created_at, order_id) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [tx_id, type, stamp, json.dumps(payload, separators=(",", ":")), stamp, order_id],
    )
    return tx_id


def owner_id() -> str:
    """Who holds a lease: this host and process (so a dead process can be recognised)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _now(now: datetime | None) -> str:
    return clock.iso(now or clock.utcnow())


def _row(r: dict[str, Any]) -> dict[str, Any]:
    r["payload"] = json.loads(r["payload"])
    return r


# Rows up to and including a given one, in sending order (the sync worker's narrowing
# window, app/store/sync/push.py): only rows it is allowed to send before that one.
_UPTO = "(created_at, rowid) <= (SELECT created_at, rowid FROM outbox WHERE id = ?)"


def pending(
    db: Database,
    limit: int = 500,
    now: datetime | None = None,
    *,
    upto: str | None = None,
    raw: bool = False,
) -> list[dict[str, Any]]:
    """Unsent rows, oldest first: not acked, not parked, not leased by a live worker;
    with ``upto``, only the rows queued before that one, and that one. With ``raw``,
    each payload stays the JSON text it is stored as (the push sends it as is)."""
    where = f"{_PENDING} AND (leased_until IS NULL OR leased_until < ?)"
    params: list[Any] = [_now(now)]
    if upto is not None:
        where += f" AND {_UPTO}"
        params.append(upto)
    rows = db.execute_returning_dicts(
        f"""SELECT id, type, occurred_at, payload, attempts FROM outbox WHERE {where}
            ORDER BY created_at, rowid LIMIT ?""",  # noqa: S608
        [*params, limit],
    )
    return rows if raw else [_row(r) for r in rows]


def unsettled(db: Database, id: str) -> bool:
    """Whether ``id`` is still to be sent (not acknowledged, not parked), leased or not."""
    return (
        db.execute(f"SELECT 1 FROM outbox WHERE id = ? AND {_PENDING}", [id]).fetchone()  # noqa: S608
        is not None
    )


def count_upto(db: Database, id: str) -> int:
    """How many unsent rows are queued up to and including ``id`` (leased or not)."""
    return db.execute(
        f"SELECT count(*) FROM outbox WHERE {_PENDING} AND {_UPTO}",  # noqa: S608
        [id],
    ).fetchone()[0]


def lease(
    db: Database,
    limit: int = 500,
    *,
    owner: str,
    now: datetime | None = None,
    seconds: int = LEASE_SECONDS,
    upto: str | None = None,
    raw: bool = False,
) -> list[dict[str, Any]]:
    """Take up to ``limit`` pending rows (oldest first, none after ``upto`` if given)
    for ``owner`` to send (``raw``: as :func:`pending`)."""
    moment = now or clock.utcnow()
    with dbmod.write(db):
        # Chosen and marked under one write lock: another worker cannot take the same.
        rows = pending(db, limit, moment, upto=upto, raw=raw)
        if rows:
            ids = [r["id"] for r in rows]
            marks = ",".join("?" * len(ids))
            db.execute(
                f"""UPDATE outbox SET leased_until = ?, leased_by = ?, attempts = attempts + 1
                    WHERE id IN ({marks})""",  # noqa: S608
                [clock.iso(moment + timedelta(seconds=seconds)), owner, *ids],
            )
    return rows


def release(db: Database, ids: list[str], owner: str, error: str | None = None) -> None:
    """Give back rows that were not acknowledged (the hub was unreachable), noting why."""
    if not ids:
        return
    marks = ",".join("?" * len(ids))
    with dbmod.write(db):
        db.execute(
            f"""UPDATE outbox SET leased_until = NULL, leased_by = NULL,
                    last_error = COALESCE(?, last_error)
                WHERE id IN ({marks}) AND leased_by = ? AND acked_at IS NULL""",  # noqa: S608
            [error, *ids, owner],
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead(db: Database) -> int:
    """Free leases held by processes of this host that no longer run (e.g. killed)."""
    host = socket.gethostname()
    owners = [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT leased_by FROM outbox WHERE leased_by IS NOT NULL AND acked_at IS NULL"
        ).fetchall()
    ]
    dead = []
    for owner in owners:
        owner_host, _, pid = owner.rpartition(":")
        if owner_host == host and pid.isdigit() and not _pid_alive(int(pid)):
            dead.append(owner)
    if not dead:
        return 0
    marks = ",".join("?" * len(dead))
    with dbmod.write(db):
        return db.execute(
            f"""UPDATE outbox SET leased_until = NULL, leased_by = NULL
                WHERE leased_by IN ({marks}) AND acked_at IS NULL""",  # noqa: S608
            dead,
        ).rowcount


# What a transaction type does in its own tables when its row leaves the queue settled
# (the hub acknowledged it, or head office discarded it): ``hook(db, tx_id, payload,
# result, stamp)``, run in the same transaction. The types' modules own them; the one
# list is app/store/domain/acks.py (ACK_HOOKS).
AckHook = Callable[[Database, str, dict[str, Any], dict[str, Any], str], None]


def mark_acked(
    db: Database,
    id: str,
    result: dict[str, Any] | None,
    now: datetime | None = None,
    *,
    hooks: Mapping[str, AckHook],
) -> bool:
    """Record the hub's acknowledgement of ``id``; False if unknown or already acked.

    The hook of the row's type in ``hooks`` runs in the same transaction, with the
    hub's ``result`` (for a stock movement: the hub's level, app/store/domain/stock.py).
    """
    stamp = _now(now)
    with dbmod.write(db):
        row = db.execute("SELECT type, payload, acked_at FROM outbox WHERE id = ?", [id]).fetchone()
        if row is None or row[2] is not None:
            return False
        kind, payload = row[0], json.loads(row[1])
        db.execute(
            """UPDATE outbox SET acked_at = ?, leased_until = NULL, leased_by = NULL,
                   result = ?, last_error = NULL WHERE id = ?""",
            [stamp, json.dumps(result, separators=(",", ":")) if result else None, id],
        )
        hook = hooks.get(kind)
        if hook is not None:
            hook(db, id, payload, result or {}, stamp)
    return True


# What a type does for many of its rows settled at once (the sync worker's batch of
# acknowledgements): ``hook(db, [(tx_id, payload, result), ...], stamp)``, the same
# effect as its AckHook on each, in a few set-based statements. Listed in
# app/store/domain/acks.py (ACK_BATCH_HOOKS); a type without one gets its AckHook per row.
AckBatchHook = Callable[[Database, list[tuple[str, dict[str, Any], dict[str, Any]]], str], None]


def mark_acked_many(
    db: Database,
    acks: list[tuple[str, dict[str, Any] | None]],
    now: datetime | None = None,
    *,
    hooks: Mapping[str, AckHook],
    batch_hooks: Mapping[str, AckBatchHook] | None = None,
) -> set[str]:
    """:func:`mark_acked` for a batch of ``(id, result)``: one UPDATE for all the rows,
    then each type's batch hook once (or its hook per row), in one transaction; returns
    the ids acknowledged now (not unknown, not acknowledged before)."""
    if not acks:
        return set()
    stamp = _now(now)
    # An id given twice: the first answer counts, as with mark_acked one after another.
    results: dict[str, dict[str, Any] | None] = {}
    for i, r in acks:
        results.setdefault(i, r)
    # One JSON text for the batch; each result kept as its compact JSON (SQLite's ``->``),
    # NULL when empty, as mark_acked keeps it.
    wire = json.dumps([[i, r or None] for i, r in results.items()], separators=(",", ":"))
    with dbmod.write(db):
        rows = db.execute(
            """UPDATE outbox SET acked_at = ?, leased_until = NULL, leased_by = NULL,
                   result = CASE WHEN j.value ->> 1 IS NULL THEN NULL ELSE j.value -> 1 END,
                   last_error = NULL
               FROM json_each(?) AS j
               WHERE outbox.id = j.value ->> 0 AND outbox.acked_at IS NULL
               RETURNING outbox.id, outbox.type, outbox.payload""",
            [stamp, wire],
        ).fetchall()
        # The hooks see the rows in the order given (RETURNING's order is the engine's).
        position = {i: n for n, i in enumerate(results)}
        rows.sort(key=lambda r: position[r[0]])
        by_type: dict[str, list[tuple[str, dict[str, Any], dict[str, Any]]]] = {}
        for tx_id, kind, payload in rows:
            entry = (tx_id, json.loads(payload), results[tx_id] or {})
            by_type.setdefault(kind, []).append(entry)
        for kind, items in by_type.items():
            batch_hook = (batch_hooks or {}).get(kind)
            if batch_hook is not None:
                batch_hook(db, items, stamp)
                continue
            hook = hooks.get(kind)
            if hook is not None:
                for tx_id, payload, result in items:
                    hook(db, tx_id, payload, result, stamp)
    return {r[0] for r in rows}


def park(db: Database, id: str, reason: str, message: str = "") -> bool:
    """Set a rejected row aside for staff: it is never retried blindly."""
    with dbmod.write(db):
        return (
            db.execute(
                """UPDATE outbox SET parked_reason = ?, parked_message = ?,
                       leased_until = NULL, leased_by = NULL
                   WHERE id = ? AND acked_at IS NULL""",
                [reason or "rejected", message[:500], id],
            ).rowcount
            == 1
        )


def stats(db: Database, now: datetime | None = None) -> dict[str, Any]:
    """Queue depth (unsent, not parked), age of the oldest unsent row, parked count."""
    depth, oldest = db.execute(
        f"SELECT count(*), min(created_at) FROM outbox WHERE {_PENDING}"  # noqa: S608
    ).fetchone()
    parked_count = db.execute(
        "SELECT count(*) FROM outbox WHERE parked_reason IS NOT NULL AND acked_at IS NULL"
    ).fetchone()[0]
    age = None
    if oldest:
        age = max(0, int(((now or clock.utcnow()) - clock.parse_iso(oldest)).total_seconds()))
    return {
        "depth": depth,
        "oldest_created_at": oldest,
        "oldest_age_s": age,
        "parked": parked_count,
    }


def parked(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    """Parked rows, oldest first, with the hub's reason: for staff to look at."""
    rows = db.execute_returning_dicts(
        """SELECT id, type, occurred_at, payload, parked_reason, parked_message FROM outbox
           WHERE parked_reason IS NOT NULL AND acked_at IS NULL
           ORDER BY created_at, rowid LIMIT ?""",
        [limit],
    )
    return [_row(r) for r in rows]


def unpark(db: Database, id: str) -> str | None:
    """Send a parked row again, with a fresh attempt count; its type, or None when
    ``id`` is not a parked, unacknowledged row (nothing changes then)."""
    with dbmod.write(db):
        row = db.execute(
            "SELECT type FROM outbox WHERE id = ? AND acked_at IS NULL "
            "AND parked_reason IS NOT NULL",
            [id],
        ).fetchone()
        if row is None:
            return None
        db.execute(
            """UPDATE outbox SET parked_reason = NULL, parked_message = NULL, attempts = 0,
                   last_error = NULL, leased_until = NULL, leased_by = NULL WHERE id = ?""",
            [id],
        )
    return row[0]


def discard(
    db: Database,
    id: str,
    *,
    reason: str = "",
    by: str = "",
    now: datetime | None = None,
    hooks: Mapping[str, AckHook],
) -> str | None:
    """Take a parked row out of the queue for good, unsent: marked acknowledged with a
    result saying it was discarded, by whom and why; its type's hook settles it like an
    acknowledgement (a stock movement then stays out of the shown level, as it was while
    parked). Returns its type, or None when ``id`` is not a parked, unacknowledged row."""
    stamp = _now(now)
    with dbmod.write(db):
        row = db.execute(
            "SELECT type, payload FROM outbox WHERE id = ? AND acked_at IS NULL "
            "AND parked_reason IS NOT NULL",
            [id],
        ).fetchone()
        if row is None:
            return None
        result = {"discarded": True, "reason": reason[:300], "by": by[:254], "at": stamp}
        db.execute(
            """UPDATE outbox SET acked_at = ?, result = ?, leased_until = NULL,
                   leased_by = NULL WHERE id = ?""",
            [stamp, json.dumps(result, separators=(",", ":")), id],
        )
        hook = hooks.get(row[0])
        if hook is not None:
            hook(db, id, json.loads(row[1]), result, stamp)
    return row[0]
