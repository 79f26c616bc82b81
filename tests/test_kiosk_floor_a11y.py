"""The kiosk on the shop floor: the category grid's stock badge for sized items, the
accessible mode (selection shown without colour, controls within reach from a
wheelchair), promotion banners that fit at both orientations, and prices on an open
category page that follow a publication (issue 13)."""

from __future__ import annotations

import html
import re

import pytest

from app.store.views.kiosk import PAGE_SIZE

from .conftest import SELF_STORE


def _sized_product(db) -> dict:
    """A product in two colours and several sizes, with its category and page there."""
    pk, ref, slug, category_id = db.execute(
        """SELECT p.pk, p.ref, c.slug, c.id FROM products p
           JOIN categories c ON c.id = p.category_id
           WHERE (SELECT COUNT(DISTINCT size) FROM variants v WHERE v.product_pk = p.pk) >= 4
             AND (SELECT COUNT(DISTINCT colour_code) FROM variants v
                  WHERE v.product_pk = p.pk) >= 2
           ORDER BY p.pk LIMIT 1"""
    ).fetchone()
    rank = db.execute(
        """SELECT COUNT(*) FROM products q, products p WHERE p.pk = ?
             AND q.category_id = p.category_id
             AND (q.name_fr < p.name_fr OR (q.name_fr = p.name_fr AND q.pk < p.pk))""",
        [pk],
    ).fetchone()[0]
    variants = db.execute(
        """SELECT sku, size, colour_code FROM variants WHERE product_pk = ?
           ORDER BY colour_code, size_order""",
        [pk],
    ).fetchall()
    return {
        "pk": pk,
        "ref": ref,
        "slug": slug,
        "category_id": category_id,
        "page": rank // PAGE_SIZE + 1,
        "variants": variants,
    }


def _set_levels(db, levels: dict[str, int]) -> None:
    """This store's hub-known level of each SKU (no own movements pending here)."""
    with db.conn:
        for sku, qty in levels.items():
            db.execute(
                """INSERT INTO stock_levels (store_id, sku, qty, as_of)
                   VALUES (?, ?, ?, '2026-01-01T00:00:00Z')
                   ON CONFLICT (store_id, sku) DO UPDATE SET qty = excluded.qty""",
                [SELF_STORE, sku, qty],
            )
        db.execute("DELETE FROM stock_movements")


def _card_badge(client, product: dict, lang: str = "fr") -> str:
    client.post("/lang", data={"lang": lang})
    r = client.get(f"/category/{product['slug']}", query_string={"page": product["page"]})
    assert r.status_code == 200
    text = r.get_data(as_text=True)
    card = re.search(
        rf'<li class="card">\s*<a href="/product/{product["ref"]}">(.*?)</li>', text, re.S
    )
    assert card, "the product's card is on its category page"
    badge = re.search(r'<span class="badge [^"]+">([^<]+)</span>', card.group(1))
    return html.unescape(badge.group(1))


@pytest.fixture
def csrf_free_client(store_data):
    from app.store.app import create_app

    app = create_app({"DATA_DIR": str(store_data), "TESTING": True, "WTF_CSRF_ENABLED": False})
    return app.test_client()


def test_a_sized_cards_badge_counts_the_sizes_here_not_the_units(csrf_free_client, store_db):
    product = _sized_product(store_db)
    variants = product["variants"]
    colours = sorted({c for _, _, c in variants})
    by = {(size, colour): sku for sku, size, colour in variants}
    sizes = list(dict.fromkeys(size for _, size, _ in variants))
    # Nothing, then size A in both colours (3 + 5 units) and size B in the second (4):
    # 12 units in two sizes.
    levels = dict.fromkeys((sku for sku, _, _ in variants), 0)
    _set_levels(store_db, levels)
    assert _card_badge(csrf_free_client, product) == "Épuisé"
    levels[by[(sizes[0], colours[0])]] = 3
    levels[by[(sizes[0], colours[1])]] = 5
    levels[by[(sizes[1], colours[1])]] = 4
    _set_levels(store_db, levels)
    assert _card_badge(csrf_free_client, product) == "2 tailles dispo"
    assert _card_badge(csrf_free_client, product, "en") == "2 sizes available"
    # Every size in some colour: the count of sizes, never the 12+ units.
    for size in sizes:
        levels[by.get((size, colours[1])) or by[(size, colours[0])]] = 7
    _set_levels(store_db, levels)
    n = len(sizes)
    assert _card_badge(csrf_free_client, product) == f"{n} tailles dispo"
    # One size left, in one colour: said as such, French typography.
    _set_levels(store_db, dict.fromkeys(levels, 0) | {by[(sizes[2], colours[0])]: 9})
    assert _card_badge(csrf_free_client, product) == f"Dernière taille\u00a0: {sizes[2]}"
    assert _card_badge(csrf_free_client, product, "en") == f"Last size: {sizes[2]}"


def test_a_single_size_cards_badge_keeps_units_with_plural_agreement(csrf_free_client, store_db):
    pk, ref, slug = store_db.execute(
        """SELECT p.pk, p.ref, c.slug FROM products p JOIN categories c ON c.id = p.category_id
           WHERE (SELECT COUNT(*) FROM variants v WHERE v.product_pk = p.pk) = 1
           ORDER BY p.pk LIMIT 1"""
    ).fetchone()
    product = _sized_product(store_db) | {"pk": pk, "ref": ref, "slug": slug}
    rank = store_db.execute(
        """SELECT COUNT(*) FROM products q, products p WHERE p.pk = ?
             AND q.category_id = p.category_id
             AND (q.name_fr < p.name_fr OR (q.name_fr = p.name_fr AND q.pk < p.pk))""",
        [pk],
    ).fetchone()[0]
    product["page"] = rank // PAGE_SIZE + 1
    (sku,) = store_db.execute("SELECT sku FROM variants WHERE product_pk = ?", [pk]).fetchone()
    for qty, fr, en in (
        (1, "Dernier article", "Last one"),
        (2, "Plus que 2", "Only 2 left"),
        (7, "7 en stock", "7 in stock"),
        (0, "Épuisé", "Out of stock"),
    ):
        _set_levels(store_db, {sku: qty})
        assert _card_badge(csrf_free_client, product) == fr
        assert _card_badge(csrf_free_client, product, "en") == en
