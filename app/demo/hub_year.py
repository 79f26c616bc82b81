"""A year in the life of a chain at its hub: N stores (1,000 by default) and what the
console and the web shop read after a year of trading.

For benchmarks and scale tests (benchmarks/hub_pages.py, tests/test_hub_pages_scale.py),
on a hub already seeded by :func:`app.demo.hub_seed.seed_hub` (its catalog and its three
demo stores). :func:`seed_year` adds, deterministically from ``seed`` and with every date
relative to the injected clock (:mod:`app.core.clock`, or ``now``):

- **stores**, registered through :func:`app.hub.domain.registry.insert_store` (each
  announced on the feed), in French cities (accents included: the searches fold them),
  opened over the past years;
- **stock**: each store carries a share of the catalog's products (``assortment``), all
  their sizes, with levels like the demo's (some at 0);
- **health**: every store's last report (most online, some silent for minutes or days,
  a few never heard from, some with parked transactions, a few with more than the 50 a
  report lists) and a report a minute over the last ``history_hours`` while it was up;
- **web orders** across the year in every state (placed, preparing, ready, ready in
  part, collected in part, collected, expired, cancelled): valid rows with lines, a real
  signed pickup token each, hand-overs for collected ones, the customer messages of the
  last week (written by :func:`app.hub.domain.notifications.record`, marked sent) and the
  feed's order changes for the orders still open;
- **promotions** made and published through :mod:`app.hub.domain.promotions` at the
  moment head office would have (the clock set back for each): ended, live, scheduled,
  drafts and unpublished ones, chain-wide or for some stores;
- **head office**: users of every role, API tokens, and a year of the audit log
  (logins, failed ones, promotion work, actions on parked transactions).

Bulk rows go in with one statement per batch (SQLite) or ``COPY`` (PostgreSQL), as the
demo seeder does. 1,000 stores and a year take ~20 s on SQLite here.
"""

from __future__ import annotations

import bisect
import json
import math
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import repeat
from pathlib import Path
from typing import Any

from app.core import clock
from app.core.protocol import CHANGE_STORE
from app.demo import seed as store_seed
from app.demo.hub_seed import DEMO_OPENING_HOURS
from app.demo.hub_year_data import (
    CITIES,
    DEPARTMENTS,
    PARKED_REASONS,
    QUARTERS,
    STOCK_VALUES,
    STOCK_WEIGHTS,
    STREETS,
    VERSIONS,
    analyze,
    bulk,
    random_code,
)
from app.demo.hub_year_office import add_audit, add_promotions, add_users
from app.demo.hub_year_orders import add_orders
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain.registry import ID_ALPHABET, insert_store
from app.hub.migrations import fill_store_search

Progress = Callable[[str], None]


def seed_year(
    db: Db,
    data_dir: str | Path,
    stores: int = 1000,
    *,
    seed: int = 2026,
    days: int = 365,
    orders_per_store_day: float = 0.25,
    assortment: float = 0.08,
    history_hours: int = 25,
    users: int = 40,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Add ``stores`` stores and a year of their life to a hub seeded by ``seed_hub``.

    Returns counts per kind and, under ``"sample"``, a few things to look for (a city, a
    store's id and name, a ready order's id and number) for benchmarks and tests.
    """
    moment = (now or clock.utcnow()).replace(microsecond=0)
    rng = random.Random(seed)
    say = progress or (lambda _text: None)
    if hdb.scalar(db, "SELECT count(*) FROM products") == 0:
        raise ValueError("seed the hub's catalog first (app.demo.hub_seed.seed_hub)")
    out: dict[str, Any] = {}
    with hdb.write(db), store_seed._bulk_cache(db):  # noqa: SLF001
        # What the hub published before this year (the catalog, the first stores) is dated
        # before it: a store's sync lag is the age of the oldest change it has not applied.
        hdb.execute(
            db,
            "UPDATE changes SET created_at = ? WHERE created_at > ?",
            [
                clock.iso(moment - timedelta(days=days + 30)),
                clock.iso(moment - timedelta(days=days)),
            ],
        )
        made = _stores(db, rng, stores, moment)
        out["stores"] = len(made)
        say(f"{len(made)} stores")
        assortments = _stock(db, rng, made, assortment, moment)
        out["stock_levels"] = sum(len(v) for v in assortments.values())
        say(f"{out['stock_levels']} stock levels")
    with hdb.write(db):  # one transaction: each promotion's own is a savepoint in it
        people = add_users(db, rng, users, moment)
        out["users"] = len(people)
        promos, promo_events = add_promotions(db, rng, made, people, moment, days)
    out["promotions"] = promos
    say(f"{promos} promotions")
    with hdb.write(db), store_seed._bulk_cache(db):  # noqa: SLF001
        orders = add_orders(
            db, data_dir, rng, made, assortments, moment, days, orders_per_store_day * len(made)
        )
        out.update(orders["counts"])
        say(f"{orders['counts']['orders']} orders")
        out["audit"] = add_audit(db, rng, people, made, promo_events, moment, days)
        health = _health(db, rng, made, moment, history_hours)
        out.update(health)
        say(f"health of {len(made)} stores, {health['health_history']} reports")
    fill_store_search(db)
    out["sample"] = {
        "city": made[len(made) // 3]["city"] if made else None,
        "store_id": made[len(made) // 2]["id"] if made else None,
        "store_name": made[len(made) // 2]["name"] if made else None,
        **orders["sample"],
    }
    return out


# --- Stores ---------------------------------------------------------------------------


def _stores(db: Db, rng: random.Random, n: int, now: datetime) -> list[dict[str, Any]]:
    taken = {r["id"] for r in hdb.rows(db, "SELECT id FROM stores")}
    names = {r["name"] for r in hdb.rows(db, "SELECT name FROM stores")}
    cities = [c for c, _w in CITIES]
    weights = [w for _c, w in CITIES]
    per_city: dict[str, int] = {}
    made = []
    for _ in range(n):
        city = rng.choices(cities, weights)[0]
        k = per_city.get(city, 0)
        per_city[city] = k + 1
        name = (
            f"Sportissimo {city}" if k == 0 else f"Sportissimo {city} {QUARTERS[k % len(QUARTERS)]}"
        )
        if k >= len(QUARTERS):
            name += f" {k // len(QUARTERS) + 1}"
        while name in names:
            name += " bis"
        names.add(name)
        while True:
            store_id = "st-" + random_code(rng, ID_ALPHABET, 6)
            if store_id not in taken:
                taken.add(store_id)
                break
        hours = DEMO_OPENING_HOURS
        if rng.random() < 0.2:
            hours = {**DEMO_OPENING_HOURS, "sun": [["09:30", "12:30"]]}
        postcode = f"{DEPARTMENTS[city]}{rng.choice((0, 0, 100, 200)) + rng.randint(0, 20):03d}"
        address = f"{rng.randint(1, 180)} {rng.choice(STREETS)}, {postcode} {city}"
        insert_store(
            db,
            store_id,
            name,
            city,
            address,
            opening_hours=hours,
            secret=rng.randbytes(32).hex(),
        )
        opened = now - timedelta(days=365 + rng.randint(0, 3650), hours=rng.randint(0, 23))
        made.append({"id": store_id, "name": name, "city": city, "created_at": clock.iso(opened)})
    hdb.executemany(
        db,
        "UPDATE stores SET created_at = ? WHERE id = ?",
        [[s["created_at"], s["id"]] for s in made],
    )
    # Each store was announced on the feed when it was registered.
    hdb.executemany(
        db,
        "UPDATE changes SET created_at = ? WHERE kind = ? AND key = ?",
        [[s["created_at"], CHANGE_STORE, s["id"]] for s in made],
    )
    return made


def _stock(
    db: Db, rng: random.Random, made: list[dict[str, Any]], share: float, now: datetime
) -> dict[str, list[str]]:
    """Each store's assortment (whole products, every size) with levels; store -> skus
    with at least one unit."""
    by_product: dict[int, list[str]] = {}
    for pk, sku in hdb.execute(db, "SELECT product_pk, sku FROM variants").fetchall():
        by_product.setdefault(pk, []).append(sku)
    products = sorted(by_product)
    k = max(1, min(len(products), round(share * len(products))))
    as_of = clock.iso(now)
    in_stock: dict[str, list[str]] = {}
    rows: list[tuple[str, str, int, str]] = []
    for store in sorted(made, key=lambda s: s["id"]):
        skus = sorted(sku for pk in rng.sample(products, k) for sku in by_product[pk])
        qtys = rng.choices(STOCK_VALUES, STOCK_WEIGHTS, k=len(skus))
        rows.extend((store["id"], sku, qty, as_of) for sku, qty in zip(skus, qtys, strict=True))
        in_stock[store["id"]] = [sku for sku, qty in zip(skus, qtys, strict=True) if qty > 0]
        if len(rows) >= 200_000:
            bulk(db, "stock_levels", ["store_id", "sku", "qty", "as_of"], rows)
            rows = []
    bulk(db, "stock_levels", ["store_id", "sku", "qty", "as_of"], rows)
    analyze(db, "stores", "stock_levels")
    return in_stock


# --- Head office ------------------------------------------------------------------------


def _health(
    db: Db, rng: random.Random, made: list[dict[str, Any]], now: datetime, history_hours: int
) -> dict[str, int]:
    """Each store's last report and last contact, and a report a minute while it was up.

    A store's cursor is where the feed stood when it was last heard from: the last seq
    whose change, and every change before it, was made by then (seqs here are not in
    time order: the year's promotions were written before its orders)."""
    made_by: list[str] = []  # made_by[i]: when the changes up to the (i+1)-th were all made
    seqs: list[int] = []
    for seq, created in hdb.execute(db, "SELECT seq, created_at FROM changes ORDER BY seq"):
        made_by.append(max(created, made_by[-1]) if made_by else created)
        seqs.append(seq)
    last = seqs[-1] if seqs else 0
    versions = [v for v, _w in VERSIONS]
    version_weights = [w for _v, w in VERSIONS]
    rows = []
    history: list[tuple[str, str, int, int]] = []
    counts = {"online": 0, "offline": 0, "never": 0, "parked_stores": 0}
    since = now - timedelta(hours=history_hours)
    minutes = [clock.iso(since + timedelta(minutes=i)) for i in range(history_hours * 60 + 1)]
    for store in sorted(made, key=lambda s: s["id"]):
        r = rng.random()
        if r < 0.015:
            counts["never"] += 1
            continue
        offline = r < 0.09
        if offline:
            seen = now - timedelta(
                minutes=rng.choice((5, 20, 90, 600, 2000, 8000, 30000)) * rng.uniform(1, 1.5)
            )
        else:
            seen = now - timedelta(seconds=rng.randint(0, 50))
        counts["offline" if offline else "online"] += 1
        reported = seen - timedelta(seconds=rng.randint(0, 55))
        depth = rng.randint(10, 400) if offline else rng.choice((0, 0, 0, 0, 0, 1, 2, 5))
        parked: list[dict[str, str]] = []
        parked_count = 0
        if rng.random() < 0.05:
            parked_count = rng.choice((1, 1, 2, 3, 5, 8, 12, 70))
            for i in range(min(parked_count, 50)):
                kind, message = rng.choice(PARKED_REASONS)
                parked.append(
                    {
                        "id": str(uuid.UUID(int=rng.getrandbits(128))),
                        "type": "stock.movement" if kind != "order_state" else "order.handover",
                        "reason": kind,
                        "message": f"{message} (n° {i + 1})",
                        "created_at": clock.iso(reported - timedelta(hours=rng.randint(1, 400))),
                    }
                )
            counts["parked_stores"] += 1
        if offline:
            applied = bisect.bisect_right(made_by, clock.iso(seen))
            cursor = seqs[applied - 1] if applied else 0
        else:  # up to date, or a page behind and catching up
            cursor = last if rng.random() > 0.05 else max(0, last - rng.randint(1, 3))
        started = reported - timedelta(hours=rng.randint(1, 24 * 40))
        skew = round(rng.gauss(0, 0.6), 1) if rng.random() > 0.02 else round(rng.uniform(6, 90), 1)
        free = (
            rng.randint(2, 200) * 1024**3
            if rng.random() > 0.02
            else rng.randint(100, 900) * 1024**2
        )
        rows.append(
            {
                "store_id": store["id"],
                "reported_at": clock.iso(reported),
                "software_version": rng.choices(versions, version_weights)[0],
                "started_at": clock.iso(started),
                "free_disk_bytes": free,
                "db_size_bytes": rng.randint(20, 400) * 1024**2,
                "outbox_depth": depth,
                "oldest_unsent_at": (
                    None
                    if not depth
                    else clock.iso(reported - timedelta(minutes=rng.randint(1, 600)))
                    if offline
                    else clock.iso(reported - timedelta(seconds=rng.randint(1, 90)))
                ),
                "parked": json.dumps(parked, ensure_ascii=False, separators=(",", ":")),
                "parked_count": parked_count,
                "cursor": cursor,
                "sync_lag_s": 0 if cursor == last or not offline else rng.randint(0, 60),
                "clock_skew_s": skew,
                "last_seen_at": clock.iso(seen),
            }
        )
        # A report a minute while it was up: up to date but for a second now and then, and
        # in one store in ten a spell of up to an hour falling behind, then catching up.
        first = max(0, math.ceil((started - since).total_seconds() / 60))
        stop = min(len(minutes), int((reported - since).total_seconds() // 60) + 1)
        n = max(0, stop - first)
        lags = rng.choices((0, 1, 2), (96, 3, 1), k=n)
        if n > 60 and rng.random() < 0.1:
            hit, width = rng.randrange(n - 60), rng.randint(10, 60)
            step = rng.randint(5, 60)
            lags[hit : hit + width] = [step * i for i in range(width)]
        depths = rng.choices((0, 1, 2), (80, 15, 5), k=n)
        history.extend(zip(repeat(store["id"]), minutes[first:stop], lags, depths, strict=False))
    columns = list(rows[0]) if rows else []
    bulk(db, "store_health", columns, [tuple(r.values()) for r in rows])
    bulk(db, "store_health_history", ["store_id", "at", "sync_lag_s", "outbox_depth"], history)
    analyze(db, "store_health", "store_health_history", "hq_audit", "notifications", "changes")
    return {**counts, "health_history": len(history)}
