"""A year of web orders for :mod:`app.demo.hub_year`: every state, valid rows (lines, a
signed pickup token each, hand-overs), the last week's customer messages written by the
hub's own code, and the feed's changes for the orders still open."""

from __future__ import annotations

import json
import math
import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from app.core import clock, tokens
from app.demo.hub_orders import random_customer
from app.demo.hub_year_data import OPEN_STATES, STAFF, analyze, bulk, random_code
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import keys, notifications, order_people
from app.hub.domain.orders import PICKUP_TOKEN_TTL_S, demo_code_hash, publish_many
from app.hub.domain.registry import ID_ALPHABET

_ORDER_COLUMNS = [
    "id",
    "number",
    "store_id",
    "status",
    # the person sealed at rest (app/hub/domain/order_people.py), the clear columns ''
    "customer_name",
    "customer_email",
    "customer_name_enc",
    "customer_email_enc",
    "customer_email_idx",
    "placed_at",
    "promised_at",
    "expiry_days",
    "pickup_code",
    "pickup_code_hash",
    "pickup_token",
    "shelf_slot",
    "ready_at",
    "collected_at",
    "expired_at",
    "revision",
    "updated_at",
]
_LINE_COLUMNS = [
    "order_id",
    "line",
    "sku",
    "qty",
    "price_cents",
    "qty_ready",
    "qty_collected",
    "qty_returned",
    "discount_cents",
]
_HANDOVER_COLUMNS = ["handover_id", "order_id", "lines", "collector", "method", "staff", "at"]


def _status_for(rng: random.Random, age_h: float) -> str:
    """An order's state after ``age_h`` hours, as a year of real ones spread."""
    r = rng.random()
    if age_h < 2:
        return "placed"
    if age_h < 24:
        return ("placed", "preparing", "ready", "ready_partial")[
            0 if r < 0.35 else 1 if r < 0.6 else 2 if r < 0.95 else 3
        ]
    if age_h < 7 * 24:
        return ("ready", "collected", "partially_collected", "cancelled")[
            0 if r < 0.35 else 1 if r < 0.9 else 2 if r < 0.93 else 3
        ]
    return ("collected", "expired", "cancelled", "partially_collected")[
        0 if r < 0.88 else 1 if r < 0.94 else 2 if r < 0.98 else 3
    ]


def add_orders(
    db: Db,
    data_dir: str | Path,
    rng: random.Random,
    made: list[dict[str, Any]],
    in_stock: dict[str, list[str]],
    now: datetime,
    days: int,
    per_day: float,
) -> dict[str, Any]:
    private_key, kid = keys.ensure_hub_key(db, data_dir)
    db.pii_data_dir = Path(data_dir)  # the people sealed with its key (order_people)
    ring = order_people.ring_of(db)
    prices = dict(
        hdb.execute(
            db,
            "SELECT v.sku, coalesce(v.price_cents, p.price_cents) FROM variants v "
            "JOIN products p ON p.pk = v.product_pk",
        ).fetchall()
    )
    ids = {r[0] for r in hdb.execute(db, "SELECT id FROM orders").fetchall()}
    numbers = {r[0] for r in hdb.execute(db, "SELECT number FROM orders").fetchall()}
    codes = []
    for _ in range(64):  # hashing is slow by design: a pool of (code, hash) pairs
        code = f"{rng.randrange(10**6):06d}"
        codes.append((code, demo_code_hash(code)))
    stores = [s for s in made if in_stock.get(s["id"])]
    busy = [rng.lognormvariate(0, 0.6) for _ in stores]
    orders: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    handovers: list[tuple[Any, ...]] = []
    by_status: dict[str, int] = {}
    recent: list[str] = []
    to_publish: list[str] = []
    start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0)
    for day in range(days + 1):
        day_start = start + timedelta(days=day)
        season = 1.0 + 0.5 * math.cos((day_start.timetuple().tm_yday - 350) / 365 * 2 * math.pi)
        weekday = (0.9, 0.9, 1.0, 1.0, 1.1, 1.4, 0.8)[day_start.weekday()]
        n = int(per_day * season * weekday / 1.1 + rng.random())
        for store in rng.choices(stores, busy, k=n) if stores else []:
            placed = day_start + timedelta(seconds=rng.randint(6 * 3600, 22 * 3600))
            if placed >= now - timedelta(minutes=5):
                continue
            while True:
                order_id = "o-" + random_code(rng, ID_ALPHABET, 16)
                number = "CC-" + random_code(rng, "0123456789", 8)
                if order_id not in ids and number not in numbers:
                    ids.add(order_id)
                    numbers.add(number)
                    break
            age_h = (now - placed).total_seconds() / 3600
            status = _status_for(rng, age_h)
            by_status[status] = by_status.get(status, 0) + 1
            picked = rng.sample(
                in_stock[store["id"]],
                min(len(in_stock[store["id"]]), rng.choice((1, 1, 1, 2, 2, 3))),
            )
            qtys = [rng.choice((1, 1, 1, 2)) for _ in picked]
            ready = collected = expired = None
            revision = 1
            updated = placed
            if status not in ("placed", "preparing", "cancelled"):
                ready = placed + timedelta(minutes=rng.randint(30, int(min(age_h, 20) * 60)))
                revision += 1
                updated = ready
            if status in ("collected", "partially_collected"):
                latest = min(now - timedelta(minutes=1), ready + timedelta(days=5))
                collected = ready + (latest - ready) * rng.random()
                revision += 1
                updated = collected
            if status == "expired":
                expired = ready + timedelta(days=5)
                if expired >= now:
                    status, expired = "ready", None
                    by_status["expired"] -= 1
                    by_status["ready"] = by_status.get("ready", 0) + 1
                else:
                    revision += 1
                    updated = expired
            if status == "preparing":
                revision += 1
                updated = placed + (now - placed) * rng.random()
            if status == "cancelled":
                revision += 1
                updated = placed + timedelta(hours=rng.randint(1, 30))
                updated = min(updated, now - timedelta(minutes=1))
            code, code_hash = rng.choice(codes)
            token = tokens.mint(
                private_key,
                "pickup",
                {"o": order_id, "s": store["id"]},
                PICKUP_TOKEN_TTL_S,
                now=placed.timestamp(),
                kid=kid,
            )
            name, email = random_customer(rng)
            slot = f"{'ABC'[len(orders) % 3]}-{len(orders) % 40 + 1:02d}" if ready else None
            orders.append(
                (
                    order_id,
                    number,
                    store["id"],
                    status,
                    *order_people.sealed_order_person(ring, name, email).values(),
                    clock.iso(placed),
                    clock.iso(placed + timedelta(hours=rng.choice((2, 4, 24)))),
                    5,
                    code,
                    code_hash,
                    token,
                    slot,
                    clock.iso(ready) if ready else None,
                    clock.iso(collected) if collected else None,
                    clock.iso(expired) if expired else None,
                    revision,
                    clock.iso(updated),
                )
            )
            taken: list[dict[str, int]] = []
            for n_line, (sku, qty) in enumerate(zip(picked, qtys, strict=True), start=1):
                q_ready = qty if ready else 0
                if status == "ready_partial" and n_line == len(picked):
                    q_ready = qty - 1
                q_coll = q_ready if status == "collected" else 0
                if status == "partially_collected" and n_line == 1:
                    q_coll = q_ready
                if q_coll:
                    taken.append({"line": n_line, "qty": q_coll})
                lines.append((order_id, n_line, sku, qty, prices[sku], q_ready, q_coll, 0, 0))
            if collected and taken:
                handovers.append(
                    (
                        str(uuid.UUID(int=rng.getrandbits(128))),
                        order_id,
                        json.dumps(taken),
                        "customer",
                        "code",
                        rng.choice(STAFF),
                        clock.iso(collected),
                    )
                )
            if age_h < 7 * 24:
                recent.append(order_id)
            if status in OPEN_STATES or age_h < 3 * 24:
                to_publish.append(order_id)
    bulk(db, "orders", _ORDER_COLUMNS, orders)
    bulk(db, "order_lines", _LINE_COLUMNS, lines)
    bulk(db, "handovers", _HANDOVER_COLUMNS, handovers)
    analyze(db, "orders", "order_lines", "handovers")
    sent = _messages(db, recent)
    publish_many(db, to_publish)  # their changes, made now: what a store up to date has
    ready = next((o for o in reversed(orders) if o[3] == "ready"), None)
    return {
        "counts": {
            "orders": len(orders),
            "order_lines": len(lines),
            "handovers": len(handovers),
            "notifications": sent,
            "order_changes": len(to_publish),
            "by_status": by_status,
        },
        "sample": {
            "order_number": ready[1] if ready else None,
            "order_id": ready[0] if ready else None,
        },
    }


def _messages(db: Db, order_ids: list[str]) -> int:
    """The customer messages of recent orders, written by the hub's own code, as sent."""
    made: list[int] = []
    for order_id in order_ids:
        order = hdb.one(db, "SELECT * FROM orders WHERE id = ?", [order_id])
        assert order is not None
        placed = clock.parse_iso(order["placed_at"])
        made.append(notifications.record(db, order, "placed", now=placed))
        if order["ready_at"]:
            at = clock.parse_iso(order["ready_at"])
            made.append(notifications.record(db, order, "ready", now=at))
        if order["expired_at"]:
            at = clock.parse_iso(order["expired_at"])
            made.append(notifications.record(db, order, "expired", now=at))
    hdb.executemany(
        db,
        "UPDATE notifications SET sent_at = created_at, attempts = 1 WHERE id = ?",
        [[i] for i in made],
    )
    return len(made)


# --- Store health -----------------------------------------------------------------------
