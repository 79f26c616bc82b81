"""Replay protection: every nonce a store signs with is accepted once."""

from __future__ import annotations

import time

from app.core.signing import NONCE_TTL_S
from app.hub import database as hdb
from app.hub.database import Db

#: Seconds between two sweeps of expired nonces by one hub process.
SWEEP_EVERY_S = 30
_next_sweep = [0]  # when this process sweeps next (epoch seconds)


def remember_nonce(db: Db, store_id: str, nonce: str, now: float | None = None) -> bool:
    """Record ``nonce`` for ``store_id``; False if it was already used (a replay).

    Nonces older than NONCE_TTL_S are forgotten: a request is only accepted within
    MAX_SKEW_S (300 s) of its own timestamp, so by then replaying it fails anyway.
    Two processes cannot both accept one nonce: on SQLite the write lock serialises
    them; on PostgreSQL ``INSERT ... ON CONFLICT DO NOTHING`` on the primary key is
    atomic by itself (the second waits on the first's index entry, then inserts
    nothing), so this write leaves the hub-wide write lock alone (``lock=None``).
    """
    now_s = int(time.time() if now is None else now)
    # Not durable: a nonce lost to a power cut with the last few commits only reopens a
    # window in which the hub could not have answered the original request anyway
    # (and a replayed transaction is still applied once: its id is the key).
    with hdb.write(db, lock=None, durable=False):
        due = _next_sweep[0]
        if not due - SWEEP_EVERY_S <= now_s < due:
            # Forget expired nonces now and then, not on every request (and at once
            # should the clock have gone back).
            hdb.execute(db, "DELETE FROM nonces WHERE ts < ?", [now_s - NONCE_TTL_S])
            _next_sweep[0] = now_s + SWEEP_EVERY_S
        inserted = hdb.upsert(
            db,
            "nonces",
            {"store_id": store_id, "nonce": nonce, "ts": now_s},
            conflict=["store_id", "nonce"],
            update=[],
        )
    return inserted == 1
