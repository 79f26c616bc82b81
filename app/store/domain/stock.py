"""Stock levels and movements.

The level shown for this store is the hub's last known level plus this store's own
movements the hub has not acknowledged yet (deltas, never overwrites), so an offline
store and a busy hub never overwrite each other's work. A movement the hub refused
(parked for staff) is not counted: the hub's level is the truth, and staff record a
new correction.

The sum of those movements per SKU is a running figure, ``stock_pending``, kept by
triggers (app/store/migrations.py, m020): a read costs one look-up however long the
offline backlog, and queuing stays linear.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod
from app.core.catalog import find_variant
from app.core.protocol import MAX_REASON, STOCK_MOVEMENT
from app.store.domain import outbox

LOW_STOCK = 2  # "Plus que 1", "Plus que 2": say it when so few are left
MAX_DELTA = 10_000  # one correction; the hub accepts up to 1,000,000


class UnknownCode(LookupError):
    """No variant has this SKU or barcode."""


def self_store_id(db: Database) -> str | None:
    """The id of the store this database belongs to."""
    row = db.execute("SELECT id FROM stores WHERE is_self = 1 LIMIT 1").fetchone()
    return row[0] if row else None


def stock_version(db: Database) -> int:
    """A counter bumped by every stock change, from any process (see the triggers)."""
    return int(dbmod.get_meta(db, "stock_version", "0") or 0)


def levels(db: Database, skus: list[str], *, clamp: bool = True) -> dict[str, int]:
    """This store's level per SKU: hub level + unacknowledged own movements.

    A shopper never sees a negative level; ``clamp=False`` gives the raw sum (used to
    turn a shelf count into the right delta).
    """
    if not skus:
        return {}
    marks = ",".join("?" * len(skus))
    rows = db.execute(
        f"""SELECT v.sku,
                   COALESCE((SELECT qty FROM stock_levels l
                             WHERE l.store_id = s.id AND l.sku = v.sku), 0)
                 + COALESCE((SELECT delta FROM stock_pending p WHERE p.sku = v.sku), 0)
            FROM variants v, (SELECT id FROM stores WHERE is_self = 1) s
            WHERE v.sku IN ({marks})""",  # noqa: S608
        skus,
    ).fetchall()
    return {sku: max(qty, 0) if clamp else qty for sku, qty in rows}


def product_totals(db: Database, product_pks: list[int]) -> dict[int, int]:
    """Units in this store per product (all variants together)."""
    if not product_pks:
        return {}
    marks = ",".join("?" * len(product_pks))
    rows = db.execute(
        f"""SELECT v.product_pk,
                   SUM(MAX(0, COALESCE(l.qty, 0) + COALESCE((SELECT delta
                        FROM stock_pending p WHERE p.sku = v.sku), 0)))
            FROM variants v
            LEFT JOIN stock_levels l
              ON l.sku = v.sku AND l.store_id = (SELECT id FROM stores WHERE is_self = 1)
            WHERE v.product_pk IN ({marks})
            GROUP BY v.product_pk""",  # noqa: S608
        product_pks,
    ).fetchall()
    return {pk: total for pk, total in rows}


def other_stores(db: Database, skus: list[str]) -> list[dict[str, Any]]:
    """For each other store: its name, level per SKU and when that figure dates from."""
    stores = db.execute_returning_dicts(
        "SELECT id, name, city FROM stores WHERE is_self = 0 ORDER BY name"
    )
    if not skus or not stores:
        return stores
    # One primary-key lookup per (store, sku), a few microseconds each: SQLite plans
    # "store_id IN (...) AND sku IN (...)" on this WITHOUT ROWID table hundreds of
    # times slower (measured on 2.8 million rows).
    lookup = "SELECT store_id, sku, qty, as_of FROM stock_levels WHERE store_id = ? AND sku = ?"
    rows = [
        row
        for store in stores
        for sku in skus
        for row in db.execute(lookup, [store["id"], sku]).fetchall()
    ]
    by_store: dict[str, dict[str, Any]] = {s["id"]: s for s in stores}
    for s in stores:
        s["levels"] = {}
        s["as_of"] = None
    for store_id, sku, qty, as_of in rows:
        s = by_store.get(store_id)
        if s is None:
            continue
        s["levels"][sku] = max(qty, 0)
        s["as_of"] = min(s["as_of"] or as_of, as_of)
    return stores


def badge(qty: int) -> str:
    """A level's display class: ``out``, ``low`` or ``in``."""
    if qty <= 0:
        return "out"
    if qty <= LOW_STOCK:
        return "low"
    return "in"


def record_movement(db: Database, sku: str, delta: int, kind: str, reason: str, actor: str) -> str:
    """Write a stock movement and its ``stock.movement`` outbox row; return their id.

    Call inside the caller's write transaction, with the change that causes it (a
    reservation, an expiry, a return): the three are committed together or not at all.
    ``kind`` is one the hub accepts (adjusted, picked_up, returned, reserved, released,
    sold).
    """
    moment = clock.utcnow()
    movement_id = str(uuid.uuid4())
    # Plain SQL: sqlite-utils' insert reads the schema each time (a third of queuing).
    db.execute(
        "INSERT INTO stock_movements (id, sku, delta, kind, reason, actor, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [movement_id, sku, delta, kind, reason, actor, clock.iso(moment)],
    )
    payload = {
        "store_id": self_store_id(db),
        "sku": sku,
        "delta": delta,
        "kind": kind,
        "reason": reason,
    }
    outbox.enqueue(db, STOCK_MOVEMENT, payload, id=movement_id, now=moment)
    return movement_id


def adjust(
    db: Database,
    code: str,
    qty: int,
    *,
    counted: bool = False,
    reason: str = "",
    actor: str = "",
) -> dict[str, Any]:
    """Record a staff stock correction as a movement, and queue it for the hub.

    ``qty`` is a signed delta, or with ``counted=True`` the level just counted on the
    shelf (the movement is then the difference). The movement and its outbox row are
    written in one transaction: either the hub will learn of it or it did not happen.
    """
    if len(reason) > MAX_REASON:
        raise ValueError(f"a reason is at most {MAX_REASON} characters")
    variant = find_variant(db, code)
    if variant is None:
        raise UnknownCode(code)
    sku = variant["sku"]
    with dbmod.write(db):
        before = levels(db, [sku], clamp=False)[sku]
        delta = qty - before if counted else qty
        if counted and qty < 0:
            raise ValueError("a shelf count cannot be negative")
        if abs(delta) > MAX_DELTA:
            # The hub would refuse it; better to say so now than to park it later.
            raise ValueError(f"a correction moves at most {MAX_DELTA} units at once")
        movement_id = record_movement(db, sku, delta, "adjusted", reason, actor)
        [movement] = db.execute_returning_dicts(
            "SELECT * FROM stock_movements WHERE id = ?", [movement_id]
        )
        # Nothing else wrote meanwhile (one write transaction): no second read.
        after = max(before + delta, 0)
    return {**movement, "before": before, "after": after}


def on_acked(
    db: Database, tx_id: str, payload: dict[str, Any], result: dict[str, Any], stamp: str
) -> None:
    """A ``stock.movement`` left the outbox settled (the hub's acknowledgement, or head
    office's discard): mark the movement acknowledged and take the hub's level from
    ``result`` when it is newer than the one held, in the caller's transaction. The
    shown level (hub level + unacknowledged movements) then neither counts the movement
    twice nor misses it. Registered in app/store/domain/acks.py.
    """
    db.execute(
        "UPDATE stock_movements SET acked_at = ? WHERE id = ? AND acked_at IS NULL",
        [stamp, tx_id],
    )
    store_id = payload.get("store_id") or self_store_id(db)
    sku = result.get("sku") or payload.get("sku")
    qty, seq = result.get("qty"), result.get("seq")
    if not (store_id and sku and isinstance(qty, int) and isinstance(seq, int)):
        return
    # The hub's level at `seq` includes this movement; a level we hold with a higher
    # seq includes it too (levels are cumulative), so only a newer one replaces it.
    db.execute(
        """INSERT INTO stock_levels (store_id, sku, qty, as_of, seq) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (store_id, sku) DO UPDATE SET
               qty = excluded.qty, as_of = excluded.as_of, seq = excluded.seq
           WHERE excluded.seq > stock_levels.seq""",
        [store_id, sku, qty, stamp, seq],
    )


def on_acked_many(
    db: Database, items: list[tuple[str, dict[str, Any], dict[str, Any]]], stamp: str
) -> None:
    """:func:`on_acked` for many ``(tx_id, payload, result)`` at once, in two set-based
    statements (the sync worker settles a batch of 500 so). Registered in
    app/store/domain/acks.py (ACK_BATCH_HOOKS)."""
    if not items:
        return
    db.execute(
        """UPDATE stock_movements SET acked_at = ?
           WHERE id IN (SELECT value FROM json_each(?)) AND acked_at IS NULL""",
        [stamp, json.dumps([tx_id for tx_id, _, _ in items])],
    )
    own = None
    levels_seen = []
    for _, payload, result in items:
        store_id = payload.get("store_id") or own or (own := self_store_id(db))
        sku = result.get("sku") or payload.get("sku")
        qty, seq = result.get("qty"), result.get("seq")
        if store_id and sku and isinstance(qty, int) and isinstance(seq, int):
            levels_seen.append([store_id, sku, qty, seq])
    if not levels_seen:
        return
    # In list order, each row against the one held (rows of one SKU included): only a
    # newer seq replaces a level, as on_acked does one at a time.
    db.execute(
        """INSERT INTO stock_levels (store_id, sku, qty, as_of, seq)
           SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, ?, j.value ->> 3
           FROM json_each(?) AS j WHERE true
           ON CONFLICT (store_id, sku) DO UPDATE SET
               qty = excluded.qty, as_of = excluded.as_of, seq = excluded.seq
           WHERE excluded.seq > stock_levels.seq""",
        [stamp, json.dumps(levels_seen)],
    )
