"""Reading web orders at the hub: one order row, its lines with their product details.

Below both :mod:`.orders` (which places and publishes them) and :mod:`.notifications`
(which writes to their customers), so neither needs the other to read an order.
"""

from __future__ import annotations

from typing import Any

from app.hub import database as hdb
from app.hub.database import Db


def _cols(alias: str, names: str) -> list[tuple[str, str]]:
    return [(name, f"{alias}.{name}") for name in names.split()]


#: An order line with its product details, as (key, SQL expression) in the order of the
#: ``order`` change's lines (docs/protocol.md); read from :data:`LINE_FROM`.
LINE_COLUMNS = [
    *_cols("l", "line sku"),
    *_cols("v", "ean"),
    *_cols("p", "name_fr name_en"),
    *_cols("v", "size colour_fr colour_en"),
    ("category_slug", "c.slug"),
    *_cols("l", "qty price_cents discount_cents qty_ready qty_collected qty_returned"),
]
LINE_FROM = (
    "FROM order_lines l JOIN variants v ON v.sku = l.sku "
    "JOIN products p ON p.pk = v.product_pk JOIN categories c ON c.id = p.category_id"
)
_LINE_DATA = (
    "SELECT "  # noqa: S608 (constants)
    + ", ".join(f"{expr} AS {key}" for key, expr in LINE_COLUMNS)
    + f" {LINE_FROM} WHERE l.order_id = ? ORDER BY l.line"
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
