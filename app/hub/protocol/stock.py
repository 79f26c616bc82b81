"""The ``stock.movement`` transaction handler: a store's stock level moved."""

from __future__ import annotations

from typing import Any

from app.core.clock import now_iso
from app.core.protocol import CHANGE_STOCK, MAX_REASON, MAX_UNITS, STOCK_KINDS
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain.changes import append_change
from app.hub.protocol.common import Rejected


def movement(db: Db, store_id: str, payload: dict[str, Any], tx_id: str) -> dict[str, Any]:
    """Add ``payload.delta`` to this store's level of ``payload.sku``; a ``stock`` change."""
    sku, delta, kind = payload.get("sku"), payload.get("delta"), payload.get("kind")
    if not isinstance(sku, str) or not sku:
        raise Rejected("invalid_payload", "payload.sku must be a non-empty string")
    # bool is an int in Python, not in JSON's eyes: refuse true/false as a delta.
    if not isinstance(delta, int) or isinstance(delta, bool) or abs(delta) > MAX_UNITS:
        raise Rejected("invalid_payload", f"payload.delta must be an integer within ±{MAX_UNITS}")
    if kind not in STOCK_KINDS:
        raise Rejected("invalid_payload", f"payload.kind must be one of {sorted(STOCK_KINDS)}")
    reason = payload.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise Rejected("invalid_payload", f"payload.reason must be a string of ≤ {MAX_REASON}")
    if hdb.execute(db, "SELECT 1 FROM variants WHERE sku = ?", [sku]).fetchone() is None:
        raise Rejected("unknown_sku", f"no variant {sku}")
    # The hub-wide write lock before the level's row lock, as every writer takes them
    # (a batch of movements runs its reads without it: transactions.LOCK_FREE_TYPES):
    # one order of locks, no deadlock with a checkout reserving the same level.
    hdb.take_lock(db, hdb.WRITE_LOCK)
    as_of = now_iso()
    # A delta, never an overwrite: a missing level starts at 0.
    # The target's column qualified (stock_levels.qty): unqualified, PostgreSQL finds
    # "qty" ambiguous next to excluded.qty.
    qty = hdb.scalar(
        db,
        "INSERT INTO stock_levels (store_id, sku, qty, as_of) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (store_id, sku) DO UPDATE SET qty = stock_levels.qty + excluded.qty, "
        "as_of = excluded.as_of RETURNING qty",
        [store_id, sku, delta, as_of],
    )
    # "tx" names the transaction this level includes: a store that reads it in the
    # feed before the answer to its POST arrives knows not to count its movement twice.
    data = {"store_id": store_id, "sku": sku, "qty": qty, "as_of": as_of, "tx": tx_id}
    seq = append_change(db, CHANGE_STOCK, f"{store_id}/{sku}", data)
    return {"sku": sku, "qty": qty, "seq": seq}
