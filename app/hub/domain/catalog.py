"""Catalog and stock changes written straight from the tables, in SQL.

Building change data with ``json_object`` inside ``INSERT ... SELECT`` keeps a
100,000-product log to a few statements instead of a Python loop over every row.
The shapes are the ``data`` of docs/protocol.md's change kinds.
"""

from __future__ import annotations

from sqlite_utils import Database

from app.core.protocol import CHANGE_CATEGORY, CHANGE_PRODUCT, CHANGE_STOCK

_CATEGORY_DATA = (
    "json_object('id', c.id, 'slug', c.slug, 'name_fr', c.name_fr, 'name_en', c.name_en, "
    "'position', c.position)"
)

# Variants in display order (colour, then size), as the kiosk lists them.
_VARIANTS_DATA = (
    "(SELECT json_group_array(json(v.j)) FROM (SELECT json_object("
    "'sku', sku, 'ean', ean, 'size', size, 'size_order', size_order, "
    "'colour_code', colour_code, 'colour_fr', colour_fr, 'colour_en', colour_en, "
    "'colour_hex', colour_hex, 'price_cents', price_cents) AS j "
    "FROM variants WHERE product_pk = p.pk ORDER BY colour_code, size_order) AS v)"
)

_PRODUCT_DATA = (
    "json_object('pk', p.pk, 'ref', p.ref, 'category_id', p.category_id, 'brand', p.brand, "
    "'name_fr', p.name_fr, 'name_en', p.name_en, 'description_fr', p.description_fr, "
    "'description_en', p.description_en, 'price_cents', p.price_cents, "
    f"'variants', json({_VARIANTS_DATA}))"
)

_STOCK_DATA = "json_object('store_id', s.store_id, 'sku', s.sku, 'qty', s.qty, 'as_of', s.as_of)"


def log_categories(db: Database, created_at: str) -> int:
    """Append a ``category`` change for every category (inside a write transaction)."""
    return db.execute(
        "INSERT INTO changes (kind, key, store_id, data, created_at) "  # noqa: S608 (constants)
        f"SELECT ?, c.slug, NULL, {_CATEGORY_DATA}, ? "
        "FROM categories c ORDER BY c.position, c.id",
        [CHANGE_CATEGORY, created_at],
    ).rowcount


def log_products(db: Database, created_at: str, first_pk: int, last_pk: int) -> int:
    """Append a ``product`` change (with its variants) for products ``first_pk..last_pk``."""
    return db.execute(
        "INSERT INTO changes (kind, key, store_id, data, created_at) "  # noqa: S608 (constants)
        f"SELECT ?, p.ref, NULL, {_PRODUCT_DATA}, ? "
        "FROM products p WHERE p.pk BETWEEN ? AND ? ORDER BY p.pk",
        [CHANGE_PRODUCT, created_at, first_pk, last_pk],
    ).rowcount


def log_stock(db: Database, created_at: str, store_id: str) -> int:
    """Append a ``stock`` change for every level of ``store_id``.

    Stock changes are for every store (``store_id`` NULL on the change): a kiosk shows
    what the other shops of the chain have too.
    """
    return db.execute(
        "INSERT INTO changes (kind, key, store_id, data, created_at) "  # noqa: S608 (constants)
        f"SELECT ?, s.store_id || '/' || s.sku, NULL, {_STOCK_DATA}, ? "
        "FROM stock_levels s WHERE s.store_id = ? ORDER BY s.sku",
        [CHANGE_STOCK, created_at, store_id],
    ).rowcount
