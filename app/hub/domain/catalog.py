"""Catalog and stock changes written straight from the tables, in SQL.

Building change data inside ``INSERT ... SELECT`` keeps a 100,000-product log to a few
statements instead of a Python loop over every row. The shapes are the ``data`` of
docs/protocol.md's change kinds.

The JSON is built by each dialect's own functions, with the keys in the same order:
SQLite's json1 (``json_object``, ``json_group_array``), PostgreSQL's ``json_build_object``
and ``json_agg`` (``json``, not ``jsonb``, which would reorder the keys). The two texts
differ only in spacing (PostgreSQL writes ``{"id" : 1}``); parsed, they are the same
data, and the feed parses every change before it serves it. Text sort keys compare
bytewise on both (``COLLATE "C"`` on PostgreSQL, whose default collation may follow a
locale), so the changes are appended in the same order.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from app.core.protocol import CHANGE_CATEGORY, CHANGE_PRODUCT, CHANGE_STOCK
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import changes

# ------------------------------------------------------------------ JSON in SQL, per dialect


def bytewise(dialect: str, expr: str) -> str:
    """A text sort key compared byte by byte, as SQLite's default BINARY collation does."""
    return f'{expr} COLLATE "C"' if dialect == hdb.POSTGRESQL else expr


def json_object_sql(dialect: str, pairs: Sequence[tuple[str, str]]) -> str:
    """SQL for a JSON object with these ``(key, SQL expression)`` pairs, keys in this order.

    A parameter inside must be cast (``CAST(? AS text)``): PostgreSQL cannot otherwise
    tell its type."""
    fn = "json_build_object" if dialect == hdb.POSTGRESQL else "json_object"
    return f"{fn}(" + ", ".join(f"'{key}', {expr}" for key, expr in pairs) + ")"


def json_array_sql(dialect: str, element: str, source: str, order_by: str) -> str:
    """A scalar subquery: the JSON array of ``element`` (a JSON expression) over the rows
    of ``source`` (``FROM ... WHERE ...``) in ``order_by`` order; ``[]`` when there are none."""
    if dialect == hdb.POSTGRESQL:
        return f"(SELECT coalesce(json_agg({element} ORDER BY {order_by}), '[]'::json) {source})"
    # json() marks the text as JSON again once it has crossed a subquery (else it would
    # be embedded as a string).
    return (
        f"json((SELECT json_group_array(json(a.j)) FROM "  # noqa: S608 (our constants)
        f"(SELECT {element} AS j {source} ORDER BY {order_by}) AS a))"
    )


# ------------------------------------------------------------------ the catalog's change data


@functools.cache
def category_data(dialect: str) -> str:
    return json_object_sql(
        dialect,
        [(k, f"c.{k}") for k in ("id", "slug", "name_fr", "name_en", "position")],
    )


# Variants in display order (colour, then size), as the kiosk lists them.
_VARIANT_KEYS = (
    "sku",
    "ean",
    "size",
    "size_order",
    "colour_code",
    "colour_fr",
    "colour_en",
    "colour_hex",
    "price_cents",
)
_PRODUCT_KEYS = (
    "pk",
    "ref",
    "category_id",
    "brand",
    "name_fr",
    "name_en",
    "description_fr",
    "description_en",
    "price_cents",
)


@functools.cache
def product_data(dialect: str) -> str:
    variants = json_array_sql(
        dialect,
        json_object_sql(dialect, [(k, f"v.{k}") for k in _VARIANT_KEYS]),
        "FROM variants v WHERE v.product_pk = p.pk",
        f"{bytewise(dialect, 'v.colour_code')}, v.size_order",
    )
    return json_object_sql(
        dialect, [*((k, f"p.{k}") for k in _PRODUCT_KEYS), ("variants", variants)]
    )


@functools.cache
def stock_data(dialect: str) -> str:
    return json_object_sql(dialect, [(k, f"s.{k}") for k in ("store_id", "sku", "qty", "as_of")])


def _log(db: Db, select: str, params: list) -> int:
    """``INSERT INTO changes ... SELECT``: the seqs drawn under the hub-wide write lock
    (a savepoint inside the caller's write transaction, which it normally is)."""
    with hdb.write(db):
        count = hdb.execute(
            db,
            f"INSERT INTO changes (kind, key, store_id, data, created_at) {select}",
            params,
        ).rowcount
        changes.notify(db)
        return count


def log_categories(db: Db, created_at: str) -> int:
    """Append a ``category`` change for every category (inside a write transaction)."""
    d = hdb.dialect(db)
    return _log(
        db,
        f"SELECT ?, c.slug, NULL, {category_data(d)}, ? "  # noqa: S608 (constants)
        "FROM categories c ORDER BY c.position, c.id",
        [CHANGE_CATEGORY, created_at],
    )


def log_products(db: Db, created_at: str, first_pk: int, last_pk: int) -> int:
    """Append a ``product`` change (with its variants) for products ``first_pk..last_pk``."""
    d = hdb.dialect(db)
    return _log(
        db,
        f"SELECT ?, p.ref, NULL, {product_data(d)}, ? "  # noqa: S608 (constants)
        "FROM products p WHERE p.pk BETWEEN ? AND ? ORDER BY p.pk",
        [CHANGE_PRODUCT, created_at, first_pk, last_pk],
    )


def log_stock(db: Db, created_at: str, store_id: str) -> int:
    """Append a ``stock`` change for every level of ``store_id``.

    Stock changes are for every store (``store_id`` NULL on the change): a kiosk shows
    what the other shops of the chain have too.
    """
    d = hdb.dialect(db)
    return _log(
        db,
        f"SELECT ?, s.store_id || '/' || s.sku, NULL, {stock_data(d)}, ? "  # noqa: S608
        f"FROM stock_levels s WHERE s.store_id = ? ORDER BY {bytewise(d, 's.sku')}",
        [CHANGE_STOCK, created_at, store_id],
    )
