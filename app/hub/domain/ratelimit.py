"""Per-store rate limits for the signed API, as a sliding-window log in the hub database.

Why in the database and not in the process: the hub may run as several worker
processes (DESIGN.md), and a per-process counter would let a store make N times its
budget by landing on N workers. Why a log rather than a counter per minute: the limit
holds over any 60 s, with no double burst across a minute boundary, and the log is
at most ``limit`` rows per store. The write it costs is of the same kind as the nonce
row every signed request already writes (:mod:`.nonces`). The window is real time
(``time.time``), like the nonce window: a rate, not business time.
"""

from __future__ import annotations

import math
import time

from app.hub import database as hdb
from app.hub.database import Db


def hit(
    db: Db, bucket: str, limit: int, window_s: float = 60.0, now: float | None = None
) -> tuple[bool, int]:
    """Count one event in ``bucket``; return ``(allowed, retry_after_s)``.

    A refused event is not counted, so a store that keeps asking is let through as
    soon as its oldest event leaves the window.

    Count-then-insert: on SQLite the write lock serialises it; on PostgreSQL a lock of
    the bucket's own (not the hub-wide one) stops two workers both seeing room for one.
    """
    now = time.time() if now is None else now
    with hdb.write(db, lock=f"rate:{bucket}"):
        hdb.execute(
            db, "DELETE FROM rate_events WHERE bucket = ? AND at <= ?", [bucket, now - window_s]
        )
        count, oldest = hdb.execute(
            db, "SELECT count(*), min(at) FROM rate_events WHERE bucket = ?", [bucket]
        ).fetchone()
        if count >= limit:
            return False, max(1, math.ceil(oldest + window_s - now))
        hdb.insert(db, "rate_events", {"bucket": bucket, "at": now})
    return True, 0
