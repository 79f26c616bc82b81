"""Rendered fragments cached by what they show (app/web/fragments.py): product cards and
the product page's head and stock panel. A card shows the new stock, price and
promotion right after a change (never the cached one), each language its own text, and
no shopper ever sees another's personal bits; the cache stays within its bound.

The oracle for "not stale" is a fresh app (an empty cache) rendering the same page after
the change: the running server's cached page must say the same, and differ from before.
"""

from __future__ import annotations

import re

import pytest
import requests

from app.core import db as dbmod
from app.store.app import create_app
from app.store.domain import stock
from app.store.sync import feed
from app.web import fragments

from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON
from .test_kiosk_cards_promo import SLUG as RUNNING
from .test_kiosk_cards_promo import _publish_running_promotion
from .test_kiosk_personal import CARD, _payload, _send_card, _session_cookie, cast  # noqa: F401

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ONE_WORKER = {"KIOSK_WORKERS": "1"}  # every request meets the same process's cache


@pytest.fixture
def store_server(server_factory, store_data):
    """A real ``kiosk serve`` with one web worker."""
    return server_factory(store_data, ONE_WORKER)


def _card(html: str, ref: str) -> str:
    found = re.search(
        rf'<li class="card">\s*<a href="/product/{re.escape(ref)}">.*?</li>', html, re.S
    )
    assert found, f"no card for {ref}"
    return found.group(0)


def _fresh(data, path: str, lang: str | None = None) -> str:
    """The page as an app with an empty cache renders it now."""
    http = create_app({"DATA_DIR": str(data), "TESTING": True}).test_client()
    if lang:
        with http.session_transaction() as s:
            s["lang"] = lang
    return http.get(path).get_data(as_text=True)


def _first_card_in_stock(db) -> tuple[str, str]:
    """A category and its first product (as its first page lists them) with units here."""
    for (slug,) in db.execute("SELECT slug FROM categories ORDER BY position, slug"):
        row = db.execute(
            """SELECT p.ref FROM products p JOIN categories c ON c.id = p.category_id
               WHERE c.slug = ? ORDER BY p.name_fr, p.pk LIMIT 1""",
            [slug],
        ).fetchone()
        if row and stock.product_totals(db, [_pk(db, row[0])]).get(_pk(db, row[0]), 0) > 0:
            return slug, row[0]
    pytest.fail("no product in stock here")


def _pk(db, ref: str) -> int:
    return db.execute("SELECT pk FROM products WHERE ref = ?", [ref]).fetchone()[0]


def _skus(db, ref: str) -> list[str]:
    return [
        r[0]
        for r in db.execute(
            "SELECT v.sku FROM variants v JOIN products p ON p.pk = v.product_pk WHERE p.ref = ?",
            [ref],
        )
    ]


def test_a_card_and_the_product_page_show_a_stock_change_at_once(store_server, store_db):
    slug, ref = _first_card_in_stock(store_db)
    url = store_server.url
    before = _card(requests.get(f"{url}/category/{slug}", timeout=5).text, ref)
    page_before = requests.get(f"{url}/product/{ref}", timeout=5).text
    # Sold out here (staff corrections, as from the counter's tablet).
    for sku in _skus(store_db, ref):
        stock.adjust(store_db, sku, 0, counted=True, reason="test")
    after = _card(requests.get(f"{url}/category/{slug}", timeout=5).text, ref)
    assert after != before and "badge-out" in after and "badge-out" not in before
    assert after == _card(_fresh(store_server.data, f"/category/{slug}"), ref)
    page_after = requests.get(f"{url}/product/{ref}", timeout=5).text
    sizes = re.compile(r'<ul class="sizes">.*?</ul>', re.S)  # this store's, per size
    assert "badge-in" in sizes.search(page_before).group(0) or "badge-low" in page_before
    assert "badge-in" not in sizes.search(page_after).group(0)
    assert "badge-low" not in sizes.search(page_after).group(0)


def test_a_card_and_the_product_page_show_a_catalog_change_at_once(store_server, store_db):
    slug, ref = _first_card_in_stock(store_db)
    url = store_server.url
    before = _card(requests.get(f"{url}/category/{slug}", timeout=5).text, ref)
    head_before = requests.get(f"{url}/product/{ref}", timeout=5).text
    row = store_db.execute_returning_dicts("SELECT * FROM products WHERE ref = ?", [ref])[0]
    variants = store_db.execute_returning_dicts(
        "SELECT * FROM variants WHERE product_pk = ?", [row["pk"]]
    )
    changed = {**row, "price_cents": 123456, "name_fr": "Nom tout neuf", "variants": variants}
    own = store_db.execute("SELECT id FROM stores WHERE is_self = 1").fetchone()[0]
    change = {"seq": 10**9, "kind": "product", "key": ref, "data": changed}
    feed.apply_page(store_db, {"changes": [change], "cursor": str(10**9)}, own)

    after = _card(requests.get(f"{url}/category/{slug}", timeout=5).text, ref)
    spaced = after.replace("\u202f", " ").replace("\xa0", " ")
    assert "1 234,56" in spaced and "Nom tout neuf" in after and after != before
    assert after == _card(_fresh(store_server.data, f"/category/{slug}"), ref)
    page = requests.get(f"{url}/product/{ref}", timeout=5).text
    assert "Nom tout neuf" in page and "Nom tout neuf" not in head_before


def test_a_card_shows_a_promotion_at_once(hub_data, synced_store, server_factory):
    server = server_factory(synced_store, ONE_WORKER)
    page = f"/category/{RUNNING}"
    before = requests.get(server.url + page, timeout=5).text
    refs = re.findall(r'<li class="card">\s*<a href="/product/([^"]+)">', before)
    assert refs and "card-promo" not in before
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        found = _publish_running_promotion(hub_data)
        feed.apply_page(store, {"changes": found, "cursor": str(found[-1]["seq"])}, LYON)
    finally:
        store.close()
    after = requests.get(server.url + page, timeout=5).text
    fresh = _fresh(synced_store, page)
    for ref in refs:
        assert "card-promo" in _card(after, ref)
        assert _card(after, ref) == _card(fresh, ref)


def test_each_language_its_own_cards_and_product_page(store_server, store_db):
    slug, ref = _first_card_in_stock(store_db)
    # The same words in both languages: only the language itself tells the pages apart.
    store_db.execute(
        "UPDATE products SET name_en = name_fr, description_en = description_fr WHERE ref = ?",
        [ref],
    )
    store_db.execute("UPDATE categories SET name_en = name_fr WHERE slug = ?", [slug])
    french = requests.Session()
    english = requests.Session()
    page = english.get(store_server.url + "/", timeout=5).text
    token = _CSRF.search(page).group(1)
    english.post(
        store_server.url + "/lang", data={"lang": "en", "csrf_token": token, "next": "/"}, timeout=5
    )
    for _ in range(2):  # the second time from the cache
        fr = french.get(f"{store_server.url}/category/{slug}", timeout=5).text
        en = english.get(f"{store_server.url}/category/{slug}", timeout=5).text
        assert re.search(r"\d,\d\d\s€", _card(fr, ref)) and "€" == _price_sign(_card(en, ref))
        assert _card(en, ref) == _card(_fresh(store_server.data, f"/category/{slug}", "en"), ref)
        assert _card(fr, ref) == _card(_fresh(store_server.data, f"/category/{slug}"), ref)
        fr_page = french.get(f"{store_server.url}/product/{ref}", timeout=5).text
        en_page = english.get(f"{store_server.url}/product/{ref}", timeout=5).text
        assert "Fil d'Ariane" in fr_page and "Breadcrumb" not in fr_page
        assert "Breadcrumb" in en_page and "In our other stores" in en_page
        assert "Dans nos autres magasins" not in en_page


def _price_sign(card: str) -> str:
    return re.search(r'<span class="card-price">(.)', card).group(1)


def _usual(html: str) -> str | None:
    m = re.search(r'id="usual-size">([^<]+)<', html)
    return m.group(1) if m else None


def test_two_shoppers_never_see_each_others_personal_bits(
    server_factory,
    store_data,
    store_db,
    cast,  # noqa: F811 (the fixture imported above)
):
    _send_card(store_db, _payload(cast))  # « Pour vous » and usual size 42, with consent
    server = server_factory(store_data, ONE_WORKER)
    name, value = _session_cookie(store_data, {"card": CARD})
    chloe = requests.Session()
    chloe.cookies.set(name, value)
    anyone = requests.Session()
    product = f"{server.url}/product/{cast['in_42']}"
    for first, second in ((chloe, anyone), (anyone, chloe)):  # each warms the cache once
        pages = {id(s): s.get(product, timeout=5).text for s in (first, second)}
        browse = {id(s): s.get(server.url + "/browse", timeout=5).text for s in (first, second)}
        mine, theirs = pages[id(chloe)], pages[id(anyone)]
        assert _usual(mine) and "42" in _usual(mine)
        assert _usual(theirs) is None and "taille habituelle" not in theirs
        assert 'id="for-you"' in browse[id(chloe)] and 'id="for-you"' not in browse[id(anyone)]
        assert "Chloé" not in theirs and "Chloé" not in browse[id(anyone)]
        # The anonymous shopper's page is what an empty cache renders for them.
        assert _strip_csrf(theirs) == _strip_csrf(_fresh(store_data, f"/product/{cast['in_42']}"))
        # Each page's form carries its own session's token, never the other's.
        assert _CSRF.search(mine).group(1) != _CSRF.search(theirs).group(1)


def _strip_csrf(html: str) -> str:
    html = _CSRF.sub("CSRF", html)
    return re.sub(r'"X-CSRFToken": "[^"]+"', "CSRF", html)


def test_the_cache_is_bounded_and_drops_the_least_recently_used():
    cache = fragments.FragmentCache(max_bytes=20_000)
    for n in range(1_000):
        cache.put(f"key {n}", f"<li>{n}</li>" * 20)
    assert cache.bytes <= 20_000 and 0 < len(cache) < 1_000
    assert cache.get("key 999") is not None and cache.get("key 0") is None
    # Used lately, kept; the oldest unused goes first.
    oldest = next(iter(cache._items))
    assert cache.get(oldest) is not None
    cache.put("new", "x" * 500)
    assert cache.get(oldest) is not None and cache.bytes <= 20_000
    # Bigger than the whole bound: not kept, nothing else dropped.
    kept = len(cache)
    cache.put("huge", "x" * 30_000)
    assert cache.get("huge") is None and len(cache) == kept


def test_the_store_app_bounds_its_cache_over_many_pages(app, store_db):
    app.config["FRAGMENT_CACHE_BYTES"] = 30_000
    fragments.init_app(app)  # as the blueprint did, with the smaller bound
    http = app.test_client()
    for (slug,) in store_db.execute("SELECT slug FROM categories"):
        assert http.get(f"/category/{slug}").status_code == 200
    cache = fragments.cache_for(app)
    assert 0 < cache.bytes <= 30_000 and cache.misses > len(cache)
