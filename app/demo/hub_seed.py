"""The demo retailer at the hub: its three stores, catalog, stock and change log.

Reuses :mod:`app.demo.seed` (same seed, same catalog and levels as the demo stores) and
writes the whole change log in SQL, so 2,000 products take about a second. The same on
SQLite and PostgreSQL (bulk loads by ``COPY`` there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.clock import now_iso
from app.demo import seed as store_seed
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import catalog
from app.hub.domain.registry import insert_store
from app.hub.migrations import fill_product_search

#: Mon-Sat 9:30-19:30, closed on Sunday: day -> list of [open, close] local times.
DEMO_OPENING_HOURS: dict[str, list[list[str]]] = {
    day: [["09:30", "19:30"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat")
} | {"sun": []}

_PRODUCT_CHUNK = 5000  # products per change-log statement (and per progress call)


def seed_hub(
    db: Db,
    products: int = 2000,
    seed: int = 42,
    progress: store_seed.Progress | None = None,
    data_dir: str | Path | None = None,
    qr_dir: str | Path | None = None,
    orders_per_store: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Register the demo stores (fixed ids, new secrets), seed catalog, stock and changes.

    One transaction. ``progress(done, total)`` runs from 0 to ``total``. Raises
    ``ValueError("already seeded")`` if the hub has stores or products. Returns
    ``{"stores": [{id, name, secret}], "products", "variants", "stock_levels", "changes"}``.
    With ``data_dir`` (where the hub's signing key lives) it also publishes the key and
    gives every store demo web orders (:func:`app.demo.hub_orders.seed_orders`, in a second
    transaction; pickup QR images go to ``qr_dir``), and adds ``"orders"``: its result.
    """
    scale = max(products, 1)
    total = 4 * scale  # catalog 2 parts, stock 1, change log 1

    def report(done: int) -> None:
        if progress is not None:
            progress(min(done, total), total)

    now = now_iso()
    # One big page cache for the whole load, as app.demo.seed.seed_store does: shrinking it
    # between phases would spill dirty pages to the WAL half-way through.
    with hdb.write(db), store_seed._bulk_cache(db):
        has_stores = hdb.scalar(db, "SELECT count(*) FROM stores")
        if has_stores or hdb.scalar(db, "SELECT count(*) FROM products"):
            raise ValueError("already seeded")
        stores = []
        for demo in store_seed.DEMO_STORES:
            creds = insert_store(
                db,
                demo["id"],
                demo["name"],
                demo["city"],
                demo["address"],
                opening_hours=DEMO_OPENING_HOURS,
            )
            stores.append({"id": demo["id"], "name": demo["name"], "secret": creds["secret"]})
        counts = store_seed.seed_catalog(
            db,
            products=products,
            seed=seed,
            progress=lambda done, _total: report(2 * done),
        )
        # The web shop's folded search text (m008): now, not on the first shopper's search.
        fill_product_search(db)
        stock = store_seed.seed_stock(
            db,
            seed=seed,
            as_of=now,
            progress=lambda done, n: report(2 * scale + done * scale // max(n, 1)),
        )
        n_changes = len(stores) + catalog.log_categories(db, now)
        for first in range(1, products + 1, _PRODUCT_CHUNK):
            last = min(first + _PRODUCT_CHUNK - 1, products)
            n_changes += catalog.log_products(db, now, first, last)
            report(3 * scale + last // 2)
        for i, store in enumerate(stores, start=1):
            n_changes += catalog.log_stock(db, now, store["id"])
            report(3 * scale + scale // 2 + i * scale // (2 * len(stores)))
    result: dict[str, Any] = {
        "stores": stores,
        "products": counts["products"],
        "variants": counts["variants"],
        "stock_levels": stock["stock_levels"],
        "changes": n_changes,
    }
    if data_dir is not None:
        from app.demo.hub_orders import seed_orders

        result["orders"] = seed_orders(
            db, data_dir, per_store=orders_per_store, qr_dir=qr_dir, seed=seed
        )
    report(total)
    return result
