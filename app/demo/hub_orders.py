"""Demo web orders for each demo store: to prepare (some late), ready, collected, expired.

Pickup codes of demo orders are public (demo.json lists the ready ones), so they are
hashed with :func:`.orders.demo_code_hash`, which keeps seeding fast.
"""

from __future__ import annotations

import json
import random
import unicodedata
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from app.core import tokens
from app.core.clock import iso, utcnow
from app.core.protocol import CHANGE_STOCK, CHANGE_STORE
from app.core.qr import render_qr
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import keys, notifications, order_people
from app.hub.domain.changes import append_change
from app.hub.domain.orders import (
    PICKUP_TOKEN_TTL_S,
    access_key,
    create_order,
    demo_code_hash,
    fresh_ids,
    new_pickup_code,
    publish,
    publish_many,
    set_status,
    shop_path,
)

#: How many orders of each kind every store gets.
DEMO_ORDER_MIX: dict[str, int] = {"placed": 12, "ready": 4, "collected": 3, "expired": 2}

FIRST_NAMES = (
    "Camille",
    "Léa",
    "Manon",
    "Chloé",
    "Inès",
    "Élodie",
    "Sarah",
    "Juliette",
    "Louise",
    "Hugo",
    "Lucas",
    "Théo",
    "Nathan",
    "Mathis",
    "Jules",
    "Gabriel",
    "Raphaël",
    "Noé",
    "Émile",
    "Zoé",
    "Anaïs",
    "Benoît",
    "Céline",
    "François",
)
LAST_NAMES = (
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Mercier",
)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def random_customer(rng: random.Random) -> tuple[str, str]:
    """A French name and a matching example.com address."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    email = f"{_ascii(first)}.{_ascii(last)}{rng.randint(1, 99)}@example.com"
    return f"{first} {last}", email


def _skus_in_stock(db: Db, store_id: str, rng: random.Random) -> list[str]:
    rows = hdb.execute(
        db, "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 4 ORDER BY sku", [store_id]
    ).fetchall()
    skus = [r[0] for r in rows]
    rng.shuffle(skus)
    return skus


def _make_ready(db: Db, order_id: str, slot: str, at: datetime, short: bool) -> None:
    """Every line ready (the last one short by one unit when ``short``)."""
    hdb.execute(db, "UPDATE order_lines SET qty_ready = qty WHERE order_id = ?", [order_id])
    if short:
        hdb.execute(
            db,
            "UPDATE order_lines SET qty_ready = qty - 1 WHERE order_id = ? AND line = "
            "(SELECT max(line) FROM order_lines WHERE order_id = ?)",
            [order_id, order_id],
        )
    left_short = hdb.execute(
        db, "SELECT count(*) FROM order_lines WHERE order_id = ? AND qty_ready < qty", [order_id]
    ).fetchone()[0]
    status = "ready_partial" if left_short else "ready"
    set_status(db, order_id, status, iso(at), shelf_slot=slot)
    order = hdb.rows(db, "SELECT * FROM orders WHERE id = ?", [order_id])[0]
    notifications.record(db, order, "ready", now=at)


def _collect(db: Db, order_id: str, at: datetime) -> None:
    lines = hdb.execute(
        db,
        "SELECT line, qty_ready FROM order_lines WHERE order_id = ? AND qty_ready > 0",
        [order_id],
    ).fetchall()
    hdb.execute(
        db,
        "INSERT INTO handovers (handover_id, order_id, lines, collector, method, staff, at) "
        "VALUES (?, ?, ?, 'customer', 'code', 'seed', ?)",
        [
            str(uuid.uuid4()),
            order_id,
            json.dumps([{"line": n, "qty": q} for n, q in lines]),
            iso(at),
        ],
    )
    hdb.execute(
        db, "UPDATE order_lines SET qty_collected = qty_ready WHERE order_id = ?", [order_id]
    )
    set_status(db, order_id, "collected", iso(at))


def _expire(db: Db, order_id: str, store_id: str, at: datetime) -> None:
    """Expired: the units go back to the store's level (as the store's release would)."""
    set_status(db, order_id, "expired", iso(at))
    order = hdb.rows(db, "SELECT * FROM orders WHERE id = ?", [order_id])[0]
    notifications.record(db, order, "expired", now=at)
    for sku, qty in hdb.execute(
        db, "SELECT sku, qty FROM order_lines WHERE order_id = ?", [order_id]
    ).fetchall():
        level = hdb.execute(
            db,
            "UPDATE stock_levels SET qty = qty + ?, as_of = ? WHERE store_id = ? AND sku = ? "
            "RETURNING qty",
            [qty, iso(at), store_id, sku],
        ).fetchall()[0][0]
        data = {"store_id": store_id, "sku": sku, "qty": level, "as_of": iso(at)}
        append_change(db, CHANGE_STOCK, f"{store_id}/{sku}", data)


def seed_orders(
    db: Db,
    data_dir: str | Path,
    per_store: dict[str, int] | None = None,
    now: datetime | None = None,
    qr_dir: str | Path | None = None,
    seed: int = 42,
    stores: list[str] | None = None,
) -> dict[str, Any]:
    """Give every store demo web orders; return what a tester needs for the ready ones.

    Returns ``{"orders": n, "by_status": {status: n}, "ready": [{store_id, order_id,
    number, customer_name, status, shelf_slot, pickup_code, pickup_token, access_key,
    shop_path, qr_png}]}``; ``qr_png`` is the path of the pickup QR image written in
    ``qr_dir`` (None without ``qr_dir``).
    """
    mix = DEMO_ORDER_MIX if per_store is None else per_store
    now = now or utcnow()
    rng = random.Random(seed)
    private_key, _kid = keys.ensure_hub_key(db, data_dir)
    db.pii_data_dir = Path(data_dir)  # the orders' people sealed with its key (order_people)
    if stores is None:
        # In the order they were registered: by their first change on the feed (there is
        # no rowid on PostgreSQL, and created_at has one-second ties).
        stores = [
            r[0]
            for r in hdb.execute(
                db,
                "SELECT s.id FROM stores s ORDER BY coalesce((SELECT min(c.seq) FROM changes c "
                "WHERE c.kind = ? AND c.key = s.id), 0), s.created_at, s.id",
                [CHANGE_STORE],
            ).fetchall()
        ]
    if qr_dir is not None:
        Path(qr_dir).mkdir(parents=True, exist_ok=True)
    ready_out: list[dict[str, Any]] = []
    by_status: dict[str, int] = {}
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with hdb.write(db):
        for store_id in stores:
            skus = _skus_in_stock(db, store_id, rng)
            slot_no = 0
            for kind, count in mix.items():
                for i in range(count):
                    if kind == "placed":
                        placed = now - timedelta(minutes=rng.randint(10, 2 * 24 * 60))
                    elif kind == "expired":
                        placed = now - timedelta(days=rng.randint(9, 12), hours=rng.randint(0, 8))
                    else:
                        placed = now - timedelta(days=rng.randint(1, 3), hours=rng.randint(0, 8))
                    promised = placed + timedelta(hours=rng.choice((2, 4, 24)))
                    n_lines = rng.choice((1, 1, 2, 2, 3))
                    picked = [skus.pop() for _ in range(n_lines) if skus]
                    if not picked:
                        break
                    lines = [{"sku": s, "qty": rng.choice((1, 1, 1, 2))} for s in picked]
                    name, email = random_customer(rng)
                    made = create_order(
                        db,
                        store_id,
                        name,
                        email,
                        lines,
                        promised_at=promised,
                        private_key=private_key,
                        now=placed,
                        code_hasher=demo_code_hash,
                    )
                    order_id = made["order"]["id"]
                    by_status[kind] = by_status.get(kind, 0) + 1
                    if kind == "placed":
                        continue
                    slot_no += 1
                    slot = f"{'ABC'[slot_no % 3]}-{slot_no:02d}"
                    ready_at = placed + timedelta(hours=rng.randint(1, 5))
                    short = kind == "ready" and i == 1 and any(ln["qty"] > 1 for ln in lines)
                    _make_ready(db, order_id, slot, ready_at, short)
                    if kind == "collected":
                        at = max(midnight, now - timedelta(minutes=rng.randint(5, 240)))
                        _collect(db, order_id, at)
                    elif kind == "expired":
                        _expire(db, order_id, store_id, placed + timedelta(days=8))
                    publish(db, order_id)
                    if kind == "ready":
                        ready_out.append(_ready_entry(db, made, store_id, name, slot, qr_dir))
    return {"orders": sum(by_status.values()), "by_status": by_status, "ready": ready_out}


def _ready_entry(
    db: Db,
    made: dict[str, Any],
    store_id: str,
    name: str,
    slot: str,
    qr_dir: str | Path | None,
) -> dict[str, Any]:
    order = made["order"]
    status = hdb.execute(db, "SELECT status FROM orders WHERE id = ?", [order["id"]]).fetchone()[0]
    png = None
    if qr_dir is not None:
        png = Path(qr_dir) / f"{order['number']}.png"
        render_qr(made["pickup_token"]).save(png, "PNG")
    return {
        "store_id": store_id,
        "order_id": order["id"],
        "number": order["number"],
        "customer_name": name,
        "status": status,
        "shelf_slot": slot,
        "pickup_code": made["pickup_code"],
        "pickup_token": made["pickup_token"],
        "access_key": access_key(db, order["id"]),
        "shop_path": shop_path(db, order),
        "qr_png": str(png) if png else None,
    }


def bulk_orders(
    db: Db,
    data_dir: str | Path,
    store_id: str,
    count: int,
    now: datetime | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """Add ``count`` open orders to one store fast (for the 10,000-orders benchmark).

    Three in four are to prepare, one in four ready on a shelf. Batch inserts, cheap
    code hashes, no stock reservation and no customer messages: load data, not a shop.
    Returns ``{"orders": count, "store_id", "first_seq", "last_seq"}``.
    """
    rng = random.Random(seed)
    now = now or utcnow()
    private_key, kid = keys.ensure_hub_key(db, data_dir)
    db.pii_data_dir = Path(data_dir)  # the people sealed with its key (order_people)
    ring = order_people.ring_of(db)
    with hdb.write(db):
        if hdb.execute(db, "SELECT 1 FROM stores WHERE id = ?", [store_id]).fetchone() is None:
            raise ValueError(f"no store {store_id}")
        variants = hdb.execute(
            db,
            "SELECT v.sku, coalesce(v.price_cents, p.price_cents) FROM variants v "
            "JOIN products p ON p.pk = v.product_pk ORDER BY v.sku",
        ).fetchall()
        if not variants:
            raise ValueError("the hub has no catalog")
        orders, lines = [], []
        for i in range(count):
            order_id, number = fresh_ids(db)
            placed = now - timedelta(minutes=rng.randint(5, 3 * 24 * 60))
            ready = i % 4 == 3
            token = tokens.mint(
                private_key,
                "pickup",
                {"o": order_id, "s": store_id},
                PICKUP_TOKEN_TTL_S,
                now=placed.timestamp(),
                kid=kid,
            )
            name, email = random_customer(rng)
            code = new_pickup_code()
            orders.append(
                (
                    order_id,
                    number,
                    store_id,
                    "ready" if ready else "placed",
                    *order_people.sealed_order_person(ring, name, email).values(),
                    iso(placed),
                    iso(placed + timedelta(hours=rng.choice((2, 4, 24)))),
                    5,
                    code,
                    demo_code_hash(code),
                    token,
                    f"B-{i % 500:03d}" if ready else None,
                    iso(placed + timedelta(hours=1)) if ready else None,
                    iso(now),
                )
            )
            for line, (sku, price) in enumerate(rng.sample(variants, rng.choice((1, 2, 3))), 1):
                qty = rng.choice((1, 1, 2))
                lines.append((order_id, line, sku, qty, price, qty if ready else 0))
            # Each order must exist before fresh_ids checks the next one's id.
            hdb.execute(
                db,
                "INSERT INTO orders (id, number, store_id, status, customer_name, "
                "customer_email, customer_name_enc, customer_email_enc, customer_email_idx, "
                "placed_at, promised_at, expiry_days, pickup_code, pickup_code_hash, "
                "pickup_token, shelf_slot, ready_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                orders[-1],
            )
        hdb.executemany(
            db,
            "INSERT INTO order_lines (order_id, line, sku, qty, price_cents, qty_ready) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            lines,
        )
        first, last = publish_many(db, [o[0] for o in orders])
    return {"orders": count, "store_id": store_id, "first_seq": first, "last_seq": last}
