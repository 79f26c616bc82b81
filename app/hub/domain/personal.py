"""Personal suggestions computed at the hub, with consent only (issue 14).

What a store's kiosk may show a recognised shopper who consented, as the ``personal``
key of their ``customer_card`` change (app/hub/domain/customer_feed.py):

- ``sizes``: per category slug, the size of the last line they bought and kept in it
  (products with a single size say nothing and are skipped);
- ``recent``: the products they looked at in the web shop, newest first, at most
  :data:`RECENT_MAX`, within :data:`RECENT_DAYS`;
- ``suggested``: at most :data:`SUGGESTED_MAX` product refs, ranked: first products
  bought together with theirs by other customers (``product_pairs``, rebuilt daily by
  :func:`rebuild_pairs`), then products of the categories they bought in, the most
  recent first, that come in their size there; never a product already in their orders;
- ``offers``: head office's offers running now whose segment they are in
  (app/hub/domain/offers.py), the :data:`OFFERS_MAX` that started first.

Every entry point asks :func:`app.hub.domain.consent.personal_allowed` first and
returns None (or records nothing) without consent: nothing is read, computed or kept.
The payload costs a handful of queries per customer (consent, their order lines,
their views, the pairs, one per-category query, the live offers).

Views (``customer_product_views``) are recorded only for a signed-in customer with
consent, one row per product (the last look), at most :data:`VIEWS_KEPT` per customer;
retention deletes those older than :data:`RECENT_DAYS`; a withdrawal deletes them all.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from app.core.clock import iso, utcnow
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import consent, offers

RECENT_DAYS = 90
RECENT_MAX = 12
VIEWS_KEPT = 50
SUGGESTED_MAX = 24
OFFERS_MAX = 10  # what a store keeps (app/store/domain/personal.py)
#: The most recent products bought that seed "bought together", and categories that
#: seed "same category" (older history says less about today's needs).
SEED_PRODUCTS = 50
SEED_CATEGORIES = 6
PAIRS_DAYS = 365
PAIRS_PER_PRODUCT = 20

_LINES = (
    "SELECT p.pk, p.ref, p.category_id, c.slug, v.size, o.placed_at, "  # noqa: S608 (KEPT)
    f"CASE WHEN {offers.KEPT} THEN 1 ELSE 0 END AS kept, "
    "(SELECT count(DISTINCT w.size) FROM variants w WHERE w.product_pk = p.pk) AS sizes "
    "FROM orders o JOIN order_lines l ON l.order_id = o.id "
    "JOIN variants v ON v.sku = l.sku JOIN products p ON p.pk = v.product_pk "
    "JOIN categories c ON c.id = p.category_id "
    "WHERE o.customer_id = ? ORDER BY o.placed_at DESC, o.id, l.line"
)


def record_view(
    db: Db, customer_id: str | None, product_pk: int, now: datetime | None = None
) -> bool:
    """A signed-in customer looked at a product in the web shop: kept only with their
    consent (otherwise no row at all); whether it was recorded."""
    if not consent.personal_allowed(db, customer_id):
        return False
    # A view lost to a power cut is harmless: no hub-wide lock, no wait for the disk.
    with hdb.write(db, lock=None, durable=False):
        hdb.upsert(
            db,
            "customer_product_views",
            {
                "customer_id": customer_id,
                "product_pk": int(product_pk),
                "viewed_at": iso(now or utcnow()),
            },
            ["customer_id", "product_pk"],
        )
        hdb.execute(
            db,
            "DELETE FROM customer_product_views WHERE customer_id = ? AND product_pk NOT IN "
            "(SELECT product_pk FROM customer_product_views WHERE customer_id = ? "
            "ORDER BY viewed_at DESC, product_pk DESC LIMIT ?)",
            [customer_id, customer_id, VIEWS_KEPT],
        )
    return True


def forget(db: Db, customer_id: str) -> int:
    """Consent withdrawn: the views recorded for suggestions go (they had no other use),
    and the categories that placed them in offers' segments; how many views."""
    with hdb.write(db, lock=None):
        hdb.execute(db, "DELETE FROM customer_categories WHERE customer_id = ?", [customer_id])
        return hdb.execute(
            db, "DELETE FROM customer_product_views WHERE customer_id = ?", [customer_id]
        ).rowcount


def remember_categories(db: Db, customer_id: str) -> int:
    """When a customer who consented last bought (and kept) something in each category
    (``customer_categories``: an offer's reach is then one index range); without consent
    nothing is kept. How many categories."""
    with hdb.write(db, lock=None):
        hdb.execute(db, "DELETE FROM customer_categories WHERE customer_id = ?", [customer_id])
        if not consent.personal_allowed(db, customer_id):
            return 0
        return hdb.execute(
            db,
            "INSERT INTO customer_categories (customer_id, category_id, last_at) "  # noqa: S608
            "SELECT o.customer_id, p.category_id, max(o.placed_at) FROM orders o "
            "JOIN order_lines l ON l.order_id = o.id JOIN variants v ON v.sku = l.sku "
            "JOIN products p ON p.pk = v.product_pk "
            f"WHERE o.customer_id = ? AND {offers.KEPT} GROUP BY o.customer_id, p.category_id",
            [customer_id],
        ).rowcount


def prune_views(db: Db, now: datetime | None = None) -> int:
    """Views older than :data:`RECENT_DAYS` deleted (the daily retention pass); how many."""
    cutoff = iso((now or utcnow()) - timedelta(days=RECENT_DAYS))
    return hdb.execute(
        db, "DELETE FROM customer_product_views WHERE viewed_at < ?", [cutoff]
    ).rowcount


def payload(db: Db, customer_id: str | None, now: datetime | None = None) -> dict[str, Any] | None:
    """What the kiosk may show this customer, or None without consent (nothing read)."""
    if not consent.personal_allowed(db, customer_id):
        return None
    when = now or utcnow()
    lines = hdb.rows(db, _LINES, [customer_id])
    kept = [r for r in lines if r["kept"]]
    sizes: dict[str, str] = {}
    for r in kept:
        if r["sizes"] > 1:
            sizes.setdefault(r["slug"], r["size"])
    return {
        "sizes": sizes,
        "recent": _recent(db, customer_id, when),
        "suggested": _suggested(db, kept, {r["pk"] for r in lines}, sizes),
        "offers": _offers(db, kept, when),
    }


def _recent(db: Db, customer_id: str | None, when: datetime) -> list[str]:
    return [
        r["ref"]
        for r in hdb.rows(
            db,
            "SELECT p.ref FROM customer_product_views cv JOIN products p ON p.pk = cv.product_pk "
            "WHERE cv.customer_id = ? AND cv.viewed_at >= ? "
            "ORDER BY cv.viewed_at DESC, p.ref LIMIT ?",
            [customer_id, iso(when - timedelta(days=RECENT_DAYS)), RECENT_MAX],
        )
    ]


def _unique(items: list[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


def _suggested(
    db: Db, kept: list[dict[str, Any]], owned: set[int], sizes: dict[str, str]
) -> list[str]:
    chosen: dict[int, str] = {}
    seeds = _unique([r["pk"] for r in kept])[:SEED_PRODUCTS]
    if seeds:
        marks = ", ".join("?" * len(seeds))
        for r in hdb.rows(
            db,
            "SELECT pp.other_pk, p.ref, sum(pp.n) AS score FROM product_pairs pp "  # noqa: S608
            f"JOIN products p ON p.pk = pp.other_pk WHERE pp.product_pk IN ({marks}) "
            "GROUP BY pp.other_pk, p.ref ORDER BY score DESC, p.ref LIMIT ?",
            [*seeds, SUGGESTED_MAX + len(owned)],
        ):
            if r["other_pk"] not in owned and len(chosen) < SUGGESTED_MAX:
                chosen[r["other_pk"]] = r["ref"]
    categories = _unique([(r["category_id"], r["slug"]) for r in kept])[:SEED_CATEGORIES]
    if categories and len(chosen) < SUGGESTED_MAX:
        rule, params = [], []
        for cat_id, slug in categories:
            if slug in sizes:
                rule.append("(p.category_id = ? AND v.size = ?)")
                params += [cat_id, sizes[slug]]
            else:
                rule.append("p.category_id = ?")
                params.append(cat_id)
        rank = {cat_id: n for n, (cat_id, _) in enumerate(categories)}
        cats = ", ".join("?" * len(categories))
        found = hdb.rows(
            db,
            "SELECT pk, ref, category_id FROM (SELECT p.pk, p.ref, p.category_id, "  # noqa: S608
            "row_number() OVER (PARTITION BY p.category_id ORDER BY p.pk) AS n "
            f"FROM products p WHERE p.category_id IN ({cats}) AND EXISTS (SELECT 1 FROM "
            f"variants v WHERE v.product_pk = p.pk AND ({' OR '.join(rule)}))) ranked "
            "WHERE n <= ?",
            [*(c for c, _ in categories), *params, SUGGESTED_MAX + len(owned)],
        )
        found.sort(key=lambda r: (rank[r["category_id"]], r["pk"]))
        for r in found:
            if len(chosen) >= SUGGESTED_MAX:
                break
            if r["pk"] not in owned:
                chosen.setdefault(r["pk"], r["ref"])
    return list(chosen.values())


def _offers(db: Db, kept: list[dict[str, Any]], when: datetime) -> list[dict[str, Any]]:
    bought = [(r["category_id"], r["placed_at"]) for r in kept]
    mine = [o for o in offers.live(db, when) if offers.in_segment(o, bought, when)]
    return [
        {"id": o["id"], "title": o["title"], "text": o["body"], "ends_at": o["ends_at"]}
        for o in mine[:OFFERS_MAX]
    ]


def digest(personal: dict[str, Any] | None) -> str:
    """A stable fingerprint of a payload (the refresh sends only what changed)."""
    text = json.dumps(personal, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def rebuild_pairs(db: Db, now: datetime | None = None) -> int:
    """Products bought together in the orders of the last :data:`PAIRS_DAYS` (any
    customer, any channel, guests included: an order's lines say nothing of who), the
    :data:`PAIRS_PER_PRODUCT` most frequent partners per product; how many pairs."""
    since = iso((now or utcnow()) - timedelta(days=PAIRS_DAYS))
    with hdb.write(db, lock=None):
        hdb.execute(db, "DELETE FROM product_pairs")
        hdb.execute(
            db,
            "WITH lp AS (SELECT DISTINCT l.order_id, v.product_pk FROM orders o "
            "JOIN order_lines l ON l.order_id = o.id JOIN variants v ON v.sku = l.sku "
            "WHERE o.placed_at >= ? AND o.status <> 'cancelled'), "
            "counted AS (SELECT a.product_pk, b.product_pk AS other_pk, count(*) AS n "
            "FROM lp a JOIN lp b ON b.order_id = a.order_id AND b.product_pk <> a.product_pk "
            "GROUP BY a.product_pk, b.product_pk), "
            "ranked AS (SELECT product_pk, other_pk, n, row_number() OVER "
            "(PARTITION BY product_pk ORDER BY n DESC, other_pk) AS r FROM counted) "
            "INSERT INTO product_pairs (product_pk, other_pk, n) "
            "SELECT product_pk, other_pk, n FROM ranked WHERE r <= ?",
            [since, PAIRS_PER_PRODUCT],
        )
        return int(hdb.scalar(db, "SELECT count(*) FROM product_pairs", default=0))
