"""The web shop's prices: the hub's one door to :func:`app.core.pricing.price_cart`.

Items come from the one builder (:func:`app.core.pricing.cart_items`, or
:func:`app.core.pricing.item_for` for a product or a variant already read), rules from
the published promotions (:func:`app.hub.domain.promotions.active_rules`). Without a
store the price is the web price: no store-only promotion, as on the shop's pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from app.core import pricing
from app.core.pricing import Item, PricedCart, Rule, price_cart
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain.promotions import active_rules

_CATALOG = (
    "SELECT v.sku, p.ref, p.brand, p.name_fr, p.name_en, v.size, v.colour_code, "
    "v.colour_fr, v.colour_en, v.colour_hex, c.slug AS category_slug, "
    "coalesce(v.price_cents, p.price_cents) AS unit_cents "
    "FROM variants v JOIN products p ON p.pk = v.product_pk "
    "JOIN categories c ON c.id = p.category_id WHERE v.sku IN "
)


def catalog_rows(db: Db, skus: Iterable[str]) -> dict[str, dict[str, Any]]:
    """sku -> product details and base unit price, for the skus that exist."""
    wanted = sorted({s for s in skus if isinstance(s, str)})
    out: dict[str, dict[str, Any]] = {}
    # Chunks stay well under SQLite's bound-parameter limit whatever the caller sends.
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in hdb.rows(db, f"{_CATALOG}({marks})", chunk):
            out[row["sku"]] = row
    return out


def promotion_rules(
    db: Db, store_id: str | None = None, now: datetime | None = None
) -> Sequence[Rule]:
    """The published promotion rules in force (the single place pricing loads them)."""
    return active_rules(db, store_id, now)


def price_items(
    db: Db,
    items: Sequence[Item],
    store_id: str | None = None,
    now: datetime | None = None,
) -> PricedCart:
    """Price a cart: the one place the hub's web shop calls :func:`app.core.pricing.price_cart`.

    ``store_id`` None is the web price (no store-only promotion), as on the shop's pages.
    """
    return price_cart(items, rules=promotion_rules(db, store_id, now), store_id=store_id, now=now)


def unit_price(db: Db, product: dict[str, Any], variant: dict[str, Any] | None = None) -> int:
    """What one unit costs today on the web, promotions included (a one-unit cart):
    the product's card (no variant) or one of its variants (:func:`app.core.pricing.item_for`)."""
    return price_items(db, [pricing.item_for(product, variant)]).total_cents


def priced_lines(
    db: Db, lines: Sequence[tuple[str, int]] | Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Lines with their product details and today's prices; unknown skus are left out.

    ``lines`` are ``(sku, qty)`` pairs or dicts with ``sku`` and ``qty`` (and maybe
    ``price_cents``, the price when added, kept as ``added_cents``). Returns
    ``{"lines": [...], "total_cents", "discount_cents", "count"}``.
    """
    pairs = [
        (ln["sku"], ln["qty"], ln.get("price_cents")) if isinstance(ln, dict) else (*ln, None)
        for ln in lines
    ]
    with hdb.read(db):  # the details and the items from one snapshot of the catalog
        rows = catalog_rows(db, [sku for sku, _qty, _p in pairs])
        known = [(sku, qty, added) for sku, qty, added in pairs if sku in rows]
        priced = price_items(db, pricing.cart_items(db, [(sku, q) for sku, q, _ in known]))
    out = []
    for (sku, qty, added), line in zip(known, priced.lines, strict=True):
        out.append(
            {
                **rows[sku],
                "qty": qty,
                "added_cents": added,
                "total_cents": line.total_cents,
                "discount_cents": line.discount_cents,
                "promotion_fr": line.label_fr,
                "promotion_en": line.label_en,
            }
        )
    return {
        "lines": out,
        "total_cents": priced.total_cents,
        "discount_cents": priced.discount_cents,
        "count": sum(qty for _sku, qty, _a in known),
    }
