"""Applying a page of the hub's change feed to the store database.

A page is applied whole, together with its cursor, in one write transaction: after a
crash the store asks again from the cursor it saved, and since every change is an
upsert keyed like the hub's ``key``, seeing a page twice is harmless.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from sqlite_utils import Database

from app.core import clock, protocol
from app.core import db as dbmod
from app.store.domain import acks, customer_cards, personal
from app.store.domain.carts import apply_revocations
from app.store.domain.customer_erasure import apply_customer_erasures
from app.store.domain.hub_keys import apply_hub_key_changes
from app.store.domain.orders.feed import apply_order_changes
from app.store.domain.promotions import apply_promotion_changes
from app.store.sync import state

log = logging.getLogger(__name__)

_STORE_SQL = """INSERT INTO stores (id, name, city, address, is_self) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name, city = excluded.city,
        address = excluded.address, is_self = excluded.is_self"""

_CATEGORY_SQL = """INSERT INTO categories (id, slug, name_fr, name_en, position)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, name_fr = excluded.name_fr,
        name_en = excluded.name_en, position = excluded.position"""

# A product may come before its category when the category changed later (the feed
# orders by seq): hold its place with a stand-in that the category's change will fill.
_CATEGORY_STANDIN_SQL = """INSERT OR IGNORE INTO categories (id, slug, name_fr, name_en)
    VALUES (?, '_pending-' || ?, '', '')"""

# ON CONFLICT DO UPDATE, not INSERT OR REPLACE: a replace deletes the row first, which
# would skip the search index's update trigger and break the variants' foreign keys.
_PRODUCT_SQL = """INSERT INTO products (pk, ref, category_id, brand, name_fr, name_en,
        description_fr, description_en, price_cents)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (pk) DO UPDATE SET ref = excluded.ref, category_id = excluded.category_id,
        brand = excluded.brand, name_fr = excluded.name_fr, name_en = excluded.name_en,
        description_fr = excluded.description_fr, description_en = excluded.description_en,
        price_cents = excluded.price_cents"""

_VARIANT_SQL = """INSERT INTO variants (sku, product_pk, ean, size, size_order, colour_code,
        colour_fr, colour_en, colour_hex, price_cents)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (sku) DO UPDATE SET product_pk = excluded.product_pk, ean = excluded.ean,
        size = excluded.size, size_order = excluded.size_order,
        colour_code = excluded.colour_code, colour_fr = excluded.colour_fr,
        colour_en = excluded.colour_en, colour_hex = excluded.colour_hex,
        price_cents = excluded.price_cents"""

# Only a newer level replaces the one held (see docs/protocol.md, "Stock").
_STOCK_SQL = """INSERT INTO stock_levels (store_id, sku, qty, as_of, seq) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (store_id, sku) DO UPDATE SET qty = excluded.qty, as_of = excluded.as_of,
        seq = excluded.seq
    WHERE excluded.seq > stock_levels.seq"""


def _store_rows(changes: list[dict], own: str | None) -> list[tuple]:
    return [
        (
            d["id"],
            d["name"],
            d.get("city") or "",
            d.get("address") or "",
            int(d["id"] == own),
        )
        for d in (c["data"] for c in changes)
    ]


def _category_rows(changes: list[dict], own: str | None) -> list[tuple]:
    return [
        (d["id"], d["slug"], d["name_fr"], d["name_en"], d.get("position") or 0)
        for d in (c["data"] for c in changes)
    ]


def _stock_rows(changes: list[dict], own: str | None) -> list[tuple]:
    now = clock.now_iso()
    return [
        (
            c["data"]["store_id"],
            c["data"]["sku"],
            c["data"]["qty"],
            c["data"].get("as_of") or now,
            c["seq"],
        )
        for c in changes
    ]


def _apply_stores(db: Database, changes: list[dict], own: str | None) -> int:
    db.conn.executemany(_STORE_SQL, _store_rows(changes, own))
    if own and any(c["data"]["id"] == own for c in changes):
        db.execute("UPDATE stores SET is_self = 0 WHERE id != ? AND is_self != 0", [own])
    return len(changes)


def _apply_categories(db: Database, changes: list[dict], own: str | None) -> int:
    db.conn.executemany(_CATEGORY_SQL, _category_rows(changes, own))
    return len(changes)


def _apply_products(db: Database, changes: list[dict], own: str | None) -> int:
    products = [c["data"] for c in changes]
    db.conn.executemany(_CATEGORY_STANDIN_SQL, {(p["category_id"],) * 2 for p in products})
    db.conn.executemany(
        _PRODUCT_SQL,
        [
            (
                p["pk"],
                p["ref"],
                p["category_id"],
                p.get("brand") or "",
                p["name_fr"],
                p["name_en"],
                p.get("description_fr") or "",
                p.get("description_en") or "",
                p["price_cents"],
            )
            for p in products
        ],
    )
    db.conn.executemany(
        _VARIANT_SQL,
        [
            (
                v["sku"],
                p["pk"],
                v["ean"],
                v["size"],
                v.get("size_order") or 0,
                v["colour_code"],
                v["colour_fr"],
                v["colour_en"],
                v["colour_hex"],
                v.get("price_cents"),
            )
            for p in products
            for v in p.get("variants") or []
        ],
    )
    return len(changes)


def _apply_stock(db: Database, changes: list[dict], own: str | None) -> int:
    # rowcount counts the rows really written: older levels are skipped by the WHERE.
    cur = db.conn.executemany(_STOCK_SQL, _stock_rows(changes, own))
    written = cur.rowcount
    # A level that names the transaction it includes ("tx") is an acknowledgement of
    # that movement: counting it as unacknowledged too would show it twice until the
    # answer to the POST arrives (or forever, if that answer was lost).
    included = [
        (clock.now_iso(), c["data"]["tx"])
        for c in changes
        if own and c["data"].get("store_id") == own and c["data"].get("tx")
    ]
    if included:
        db.conn.executemany(
            "UPDATE stock_movements SET acked_at = ? WHERE id = ? AND acked_at IS NULL", included
        )
        # Its outbox row too: the hub has it, nothing more to send (a send already in
        # flight gets "duplicate" and changes nothing).
        db.conn.executemany(
            "UPDATE outbox SET acked_at = ? WHERE id = ? AND acked_at IS NULL", included
        )
    return written


def _apply_outbox_commands(db: Database, changes: list[dict], own: str | None) -> int:
    # Head office's retry or discard of a parked row (app/store/domain/acks.py).
    return sum(
        acks.apply_command(
            db,
            c["data"]["tx_id"],
            c["data"]["action"],
            c["data"].get("reason") or "",
            c["data"].get("by") or "",
        )
        for c in changes
    )


def _apply_customer_cards(db: Database, changes: list[dict], own: str | None) -> int:
    # A customer's live card (issue 14): it replaces any card held for them (renewed).
    for c in changes:
        d = c["data"]
        customer_cards.forget_customer(db, d["customer_id"])
        customer_cards.save_card(db, d["card_id"], d["customer_id"], d.get("first_name"))
        # What the kiosk may show them, with consent; null (or absent): none, forgotten.
        personal.save(db, d["card_id"], d.get("personal"))
        customer_cards.save_points(db, d["card_id"], d.get("points"))
    return len(changes)


Applier = Callable[[Database, list[dict], str | None], int]

# In dependency order: categories before the products that point at them. Applying a
# kind's changes together keeps their order, so the latest change of a key still wins.
APPLIERS: dict[str, Applier] = {
    protocol.CHANGE_STORE: _apply_stores,
    protocol.CHANGE_CATEGORY: _apply_categories,
    protocol.CHANGE_PRODUCT: _apply_products,
    protocol.CHANGE_STOCK: _apply_stock,
    protocol.CHANGE_HUB_KEY: apply_hub_key_changes,
    protocol.CHANGE_ORDER: apply_order_changes,
    protocol.CHANGE_REVOCATION: apply_revocations,
    protocol.CHANGE_OUTBOX_COMMAND: _apply_outbox_commands,
    protocol.CHANGE_PROMOTION: apply_promotion_changes,
    protocol.CHANGE_CUSTOMER_CARD: _apply_customer_cards,
    protocol.CHANGE_CUSTOMER_ERASED: apply_customer_erasures,
}


def _apply_one_by_one(
    db: Database, kind: str, changes: Iterable[dict], own: str | None, counts: dict[str, Any]
) -> None:
    """Apply changes singly so that one that cannot be applied does not block the feed."""
    for change in changes:
        try:
            with db.atomic():  # a savepoint inside the page's transaction
                counts["applied"] += APPLIERS[kind](db, [change], own)
        except (sqlite3.IntegrityError, KeyError, TypeError, ValueError) as exc:
            log.warning(
                "change %s (%s %s) not applied: %s", change.get("seq"), kind, change.get("key"), exc
            )
            counts["failed"] += 1


CATALOG_VERSION = "catalog_version"
CATALOG_KINDS = {"store", "category", "product"}


def apply_page(
    db: Database, page: dict[str, Any], own_store_id: str | None, *, first: bool = False
) -> dict[str, Any]:
    """Apply one page of changes and save its cursor in one transaction; return counts.

    ``first`` starts a new catch-up: the progress shown to staff counts from zero.

    Counts: ``applied`` (rows written), ``stale`` (stock levels older than the one held),
    ``skipped`` (kinds this store does not know yet, per kind), ``failed`` (changes that
    could not be applied, logged).
    """
    changes = page.get("changes") or []
    by_kind: dict[str, list[dict]] = {}
    skipped: dict[str, int] = {}
    for change in changes:
        kind = change.get("kind")
        if kind in APPLIERS:
            by_kind.setdefault(kind, []).append(change)
        else:
            # A newer hub may send kinds this store does not know: skip them, do not fail.
            skipped[str(kind)] = skipped.get(str(kind), 0) + 1
    counts: dict[str, Any] = {"applied": 0, "stale": 0, "skipped": skipped, "failed": 0}
    with dbmod.write(db):
        for kind in APPLIERS:
            batch = by_kind.get(kind)
            if not batch:
                continue
            try:
                with db.atomic():
                    written = APPLIERS[kind](db, batch, own_store_id)
            except (sqlite3.IntegrityError, KeyError, TypeError, ValueError):
                _apply_one_by_one(db, kind, batch, own_store_id, counts)
                continue
            counts["applied"] += written
            if kind == "stock":
                counts["stale"] += len(batch) - written
        if by_kind.keys() & CATALOG_KINDS:
            # Names and prices changed: pages rendered from the old catalog (the kiosk's
            # search fragment cache) must not be served again.
            version = int(dbmod.get_meta(db, CATALOG_VERSION, "0") or 0)
            dbmod.set_meta(db, CATALOG_VERSION, str(version + 1))
        before = 0 if first else int(dbmod.get_meta(db, state.PULL_APPLIED, "0") or 0)
        done = before + len(changes)
        dbmod.set_meta(db, state.CURSOR, str(page.get("cursor", state.cursor(db))))
        dbmod.set_meta(db, state.PULL_APPLIED, str(done))
        dbmod.set_meta(db, state.PULL_REMAINING, str(int(page.get("remaining") or 0)))
    return counts
