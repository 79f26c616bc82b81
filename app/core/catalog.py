"""Catalog reads: categories, products and their variants, in the shopper's language."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database


def _rows(db: Database, sql: str, params: Any = None) -> list[dict[str, Any]]:
    """Every row as a dict, through ``db.execute`` only: the store's sqlite_utils
    database and the hub's PostgreSQL connection (app/hub/database.py) both have it."""
    cursor = db.execute(sql, params or [])
    columns = [d[0] for d in cursor.description or ()]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _localise(row: dict[str, Any], lang: str, *fields: str) -> dict[str, Any]:
    for field in fields:
        row[field] = row.get(f"{field}_{lang}") or row.get(f"{field}_fr", "")
    return row


def categories(db: Database, lang: str) -> list[dict[str, Any]]:
    """Every category in display order."""
    rows = _rows(db, "SELECT id, slug, name_fr, name_en FROM categories ORDER BY position, slug")
    return [_localise(r, lang, "name") for r in rows]


def category_by_slug(db: Database, slug: str, lang: str) -> dict[str, Any] | None:
    """One category, or None."""
    rows = _rows(db, "SELECT id, slug, name_fr, name_en FROM categories WHERE slug = ?", [slug])
    return _localise(rows[0], lang, "name") if rows else None


_SUMMARY = """
SELECT p.pk, p.ref, p.brand, p.name_fr, p.name_en, p.price_cents, c.slug AS category_slug
FROM products p JOIN categories c ON c.id = p.category_id
"""


def products_by_pks(db: Database, pks: list[int], lang: str) -> list[dict[str, Any]]:
    """Product summaries for a list of primary keys, in that order."""
    if not pks:
        return []
    marks = ",".join("?" * len(pks))
    rows = _rows(db, f"{_SUMMARY} WHERE p.pk IN ({marks})", pks)  # noqa: S608
    by_pk = {r["pk"]: _localise(r, lang, "name") for r in rows}
    return [by_pk[pk] for pk in pks if pk in by_pk]


def first_product_names(db: Database, category_slug: str) -> tuple[str, str]:
    """The French and English names of a category's first product (by key); two empty
    names for a category with none (what its tile's picture is drawn from)."""
    rows = _rows(
        db,
        """SELECT p.name_fr, p.name_en FROM products p JOIN categories c
           ON c.id = p.category_id WHERE c.slug = ? ORDER BY p.pk LIMIT 1""",
        [category_slug],
    )
    return (rows[0]["name_fr"] or "", rows[0]["name_en"] or "") if rows else ("", "")


def products_in_category(
    db: Database, category_id: int, lang: str, offset: int = 0, limit: int = 24
) -> list[dict[str, Any]]:
    """A page of a category's products, by name."""
    rows = _rows(
        db,
        f"{_SUMMARY} WHERE p.category_id = ? ORDER BY p.name_fr, p.pk LIMIT ? OFFSET ?",  # noqa: S608
        [category_id, limit, offset],
    )
    return [_localise(r, lang, "name") for r in rows]


def product_by_ref(db: Database, ref: str, lang: str) -> dict[str, Any] | None:
    """One product with its category, or None."""
    rows = _rows(
        db,
        """SELECT p.*, c.slug AS category_slug, c.name_fr AS category_fr,
                  c.name_en AS category_en
           FROM products p JOIN categories c ON c.id = p.category_id WHERE p.ref = ?""",
        [ref],
    )
    if not rows:
        return None
    row = _localise(rows[0], lang, "name", "description")
    row["category"] = row[f"category_{lang}"]
    return row


def variants(db: Database, product_pk: int, lang: str) -> list[dict[str, Any]]:
    """A product's variants ordered by colour then size."""
    rows = _rows(
        db,
        """SELECT sku, ean, size, size_order, colour_code, colour_fr, colour_en, colour_hex,
                  price_cents
           FROM variants WHERE product_pk = ? ORDER BY colour_code, size_order""",
        [product_pk],
    )
    return [_localise(r, lang, "colour") for r in rows]


def variant_sizes(db: Database, product_pks: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Per product, its variants' ``sku``, ``size`` and ``size_order``, ordered as
    :func:`variants` orders them: one query for a page of cards, not one per card."""
    if not product_pks:
        return {}
    marks = ",".join("?" * len(product_pks))
    out: dict[int, list[dict[str, Any]]] = {pk: [] for pk in product_pks}
    for row in _rows(
        db,
        f"""SELECT product_pk, sku, size, size_order FROM variants
            WHERE product_pk IN ({marks})
            ORDER BY product_pk, colour_code, size_order""",  # noqa: S608
        list(product_pks),
    ):
        out[row.pop("product_pk")].append(row)
    return out


def find_variant(db: Database, code: str) -> dict[str, Any] | None:
    """The variant whose SKU or barcode is ``code`` (with its product ref), or None."""
    rows = _rows(
        db,
        """SELECT v.sku, v.ean, p.ref FROM variants v JOIN products p ON p.pk = v.product_pk
           WHERE v.ean = ? OR v.sku = ? LIMIT 1""",
        [code, code],
    )
    return rows[0] if rows else None


def product_pk(db: Database, ref: str) -> int | None:
    """A product's primary key from its reference."""
    row = db.execute("SELECT pk FROM products WHERE ref = ?", [ref]).fetchone()
    return row[0] if row else None
