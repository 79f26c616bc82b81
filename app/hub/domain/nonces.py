"""Replay protection: every nonce a store signs with is accepted once."""

from __future__ import annotations

import time

from sqlite_utils import Database

from app.core import db as dbmod
from app.core.signing import NONCE_TTL_S


def remember_nonce(db: Database, store_id: str, nonce: str, now: float | None = None) -> bool:
    """Record ``nonce`` for ``store_id``; False if it was already used (a replay).

    Nonces older than NONCE_TTL_S are forgotten: a request is only accepted within
    MAX_SKEW_S (300 s) of its own timestamp, so by then replaying it fails anyway.
    Takes the write lock, so two processes cannot both accept one nonce.
    """
    now_s = int(time.time() if now is None else now)
    with dbmod.write(db):
        db.execute("DELETE FROM nonces WHERE ts < ?", [now_s - NONCE_TTL_S])
        inserted = db.execute(
            "INSERT INTO nonces (store_id, nonce, ts) VALUES (?, ?, ?) "
            "ON CONFLICT (store_id, nonce) DO NOTHING",
            [store_id, nonce, now_s],
        ).rowcount
    return inserted == 1
