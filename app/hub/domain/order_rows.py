"""Reading web orders at the hub: one order row, its lines with their product details.

Below both :mod:`.orders` (which places and publishes them) and :mod:`.notifications`
(which writes to their customers), so neither needs the other to read an order.
"""

from __future__ import annotations

from typing import Any

from app.hub import database as hdb
from app.hub.database import Db

_LINE_DATA = (
    "SELECT l.line, l.sku, v.ean, p.name_fr, p.name_en, v.size, v.colour_fr, v.colour_en, "
    "c.slug AS category_slug, l.qty, l.price_cents, l.discount_cents, l.qty_ready, "
    "l.qty_collected, l.qty_returned FROM order_lines l JOIN variants v ON v.sku = l.sku "
    "JOIN products p ON p.pk = v.product_pk JOIN categories c ON c.id = p.category_id "
    "WHERE l.order_id = ? ORDER BY l.line"
)


def get_order(db: Db, order_id: str) -> dict[str, Any] | None:
    """One order row as a dict, or None."""
    return hdb.one(db, "SELECT * FROM orders WHERE id = ?", [order_id])


def get_order_by_number(db: Db, number: str) -> dict[str, Any] | None:
    """One order row by its number, or None."""
    return hdb.one(db, "SELECT * FROM orders WHERE number = ?", [number])


def order_lines(db: Db, order_id: str) -> list[dict[str, Any]]:
    """An order's lines with their product details, in line order."""
    return hdb.rows(db, _LINE_DATA, [order_id])
