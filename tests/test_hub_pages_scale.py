"""The console and the web shop with a chain's worth of stores: lists come a page at a
time with their total, searches find stores by city (accents and case aside), and no page
number typed in the address is ever a server error.

A module's hub: the test template plus 120 stores and three months of their life
(app/demo/hub_year.py), served by a real hub; on SQLite, and again on PostgreSQL
(``make test-hub-postgresql``: the tests use ``hub_template``). The full-scale figures
(1,000 stores, a year) are benchmarks/hub_pages.py's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from app.core.search import fold, tokens
from app.demo import hub_year
from app.hub import database as hdb

from .hq_helpers import logged_in, make_user
from .hub_fixtures import *  # noqa: F403  (the hub's fixtures: hub_template)
from .hub_fixtures import HubServer, _copy_hub, drop_hub_copy, open_hub_db

STORES = 120  # + the template's 3 demo stores
DAYS = 90  # of orders, promotions and the audit log
USERS = 4
BAD_PAGES = ("abc", "-1", "0", "", "1e3", "99999999999999999999999", "٣", "2;DROP TABLE stores")
_ROW = re.compile(r'<tr class="store-(\w+)" data-store="([^"]+)">')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def chain(hub_template, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A hub with 123 stores and three months of orders, health, promotions, audit log."""
    data = _copy_hub(hub_template, tmp_path_factory.mktemp("chain") / "hub")
    db = open_hub_db(data)
    try:
        year = hub_year.seed_year(db, data, STORES, days=DAYS, history_hours=2, users=USERS)
        stores = hdb.scalar(db, "SELECT count(*) FROM stores")
    finally:
        db.close()
    assert stores == STORES + 3
    server = HubServer(data).start()
    admin = logged_in(server.url, make_user(data, "admin"))
    yield {"server": server, "url": server.url, "data": data, "admin": admin, "year": year}
    server.stop()
    drop_hub_copy(data)


def _stores_in_name_order(chain: dict[str, Any]) -> list[dict[str, Any]]:
    db = open_hub_db(chain["data"])
    try:
        rows = hdb.rows(db, "SELECT id, name, city FROM stores")
    finally:
        db.close()
    # The page's order is the database's (ORDER BY name, id): the same on both backends
    # for these names (the test cluster's collation is C, SQLite's is binary).
    return sorted(rows, key=lambda r: (r["name"].encode(), r["id"].encode()))


def _rows(html: str) -> list[tuple[str, str]]:
    return _ROW.findall(html)


def test_the_fleet_comes_fifty_stores_a_page_with_its_total(chain):
    admin, url = chain["admin"], chain["url"]
    expected = [s["id"] for s in _stores_in_name_order(chain)]
    seen: list[str] = []
    for page in (1, 2, 3):
        answer = admin.get(f"{url}/hq/flotte", params={"page": page}, timeout=20)
        assert answer.status_code == 200, answer.text[:500]
        ids = [store for _status, store in _rows(answer.text)]
        assert ids == expected[(page - 1) * 50 : page * 50], page
        assert f"sur {STORES + 3}" in answer.text and f"page {page} sur 3" in answer.text
        assert f'aria-current="page"><span class="sr-only">Page </span>{page}<' in answer.text
        seen += ids
    assert seen == expected  # every store once, none twice
    # The polled partial is the same page, and polls that page again.
    partial = admin.get(
        f"{url}/hq/flotte/etat", params={"page": 2}, headers={"HX-Request": "true"}, timeout=20
    )
    assert [s for _st, s in _rows(partial.text)] == expected[50:100]
    assert re.search(r'hx-get="/hq/flotte/etat\?page=2"', partial.text)
    assert " style=" not in partial.text and "<script>" not in partial.text
    # Each polled section keeps the other's page: a refresh of one never resets the other.
    both = {"page": 2, "page_bloquees": 2}
    table = admin.get(f"{url}/hq/flotte/etat", params=both, timeout=20).text
    hx = re.search(r'id="fleet-table"[^>]*hx-get="([^"]+)"', table, re.S).group(1)
    assert "page=2" in hx and "page_bloquees=2" in hx, hx
    parked = admin.get(f"{url}/hq/flotte/bloquees", params=both, timeout=20).text
    hx = re.search(r'id="fleet-parked"[^>]*hx-get="([^"]+)"', parked, re.S).group(1)
    assert "page_bloquees=" in hx and re.search(r"[?&;]page=2", hx.replace("&amp;", "&")), hx


def test_a_search_finds_stores_by_city_whatever_the_accents_and_case(chain):
    admin, url = chain["admin"], chain["url"]
    stores = _stores_in_name_order(chain)
    cities = sorted({s["city"] for s in stores}, key=lambda c: (fold(c) == c, c))
    city = cities[0]  # one with an accent or a capital, if any
    typed = fold(city).upper()  # what someone types: no accents, any case
    words = tokens(typed)
    expected = [
        s["id"]
        for s in stores
        if all(w in fold(f"{s['name']} {s['city']} {s['id']}") for w in words)
    ]
    answer = admin.get(f"{url}/hq/flotte", params={"q": typed}, timeout=20)
    assert answer.status_code == 200
    found = [s for _st, s in _rows(answer.text)]
    assert found == expected[:50] and found
    total = len(expected)
    assert f"<strong>{total}</strong> magasin" in answer.text
    # A store found by its id alone.
    one = stores[7]
    alone = admin.get(f"{url}/hq/flotte", params={"q": one["id"]}, timeout=20)
    assert [s for _st, s in _rows(alone.text)] == [one["id"]]
    # The state filter: only offline stores, as many as the fleet's total says.
    offline = admin.get(f"{url}/hq/flotte", params={"etat": "offline"}, timeout=20)
    statuses = [st for st, _s in _rows(offline.text)]
    assert statuses and set(statuses) == {"offline"}
    summary = re.search(r"Hors ligne</span> <strong>(\d+)</strong>", offline.text)
    assert summary and int(summary.group(1)) == len(statuses) <= 50
    nothing = admin.get(f"{url}/hq/flotte", params={"q": "zzzqqq"}, timeout=20)
    assert nothing.status_code == 200 and "Aucun magasin ne correspond" in nothing.text


def test_the_journal_pages_and_filters_by_user_and_action(chain):
    admin, url = chain["admin"], chain["url"]
    db = open_hub_db(chain["data"])
    try:
        actor, n = hdb.execute(
            db,
            "SELECT actor_id, count(*) FROM hq_audit WHERE actor_id IS NOT NULL "
            "GROUP BY actor_id ORDER BY count(*) DESC, actor_id LIMIT 1",
        ).fetchone()
        logins = hdb.scalar(db, "SELECT count(*) FROM hq_audit WHERE action = 'login'")
        second = [
            r[0]
            for r in hdb.execute(
                db,
                "SELECT at FROM hq_audit WHERE actor_id = ? ORDER BY id DESC LIMIT 50 OFFSET 50",
                [actor],
            ).fetchall()
        ]
    finally:
        db.close()
    assert n > 50 and logins > 50
    page2 = admin.get(f"{url}/hq/journal", params={"par": actor, "page": 2}, timeout=20)
    assert page2.status_code == 200
    assert re.findall(r'<time datetime="([^"]+)">', page2.text) == second
    assert f"sur {n}" in page2.text
    by_action = admin.get(f"{url}/hq/journal", params={"action": "login"}, timeout=20)
    assert f"sur {logins}" in by_action.text
    assert set(re.findall(r"<code>([a-z._]+)</code>", by_action.text)) == {"login"}


def test_promotions_come_fifty_a_page_with_a_count_per_state(chain):
    admin, url = chain["admin"], chain["url"]
    total = chain["year"]["promotions"]
    assert total > 50
    first = admin.get(f"{url}/hq/promotions", timeout=20)
    assert f'Toutes <span class="count">{total}</span>' in first.text
    last_page = -(-total // 50)
    last = admin.get(f"{url}/hq/promotions", params={"page": last_page}, timeout=20)
    rows = last.text.count('<tr class="row-')
    assert rows == total - 50 * (last_page - 1)


@pytest.mark.parametrize(
    "path",
    [
        "/hq/flotte",
        "/hq/flotte/etat",
        "/hq/flotte/bloquees",
        "/hq/flotte/graphiques",
        "/hq/journal",
        "/hq/promotions",
        "/shop/recherche?q=a",
        "/shop/produit/{ref}",
        "/shop/rayon/{slug}",
    ],
)
def test_no_page_number_is_a_server_error(chain, path):
    admin, url = chain["admin"], chain["url"]
    ref, slug = _a_product(chain)
    path = path.format(ref=ref, slug=slug)
    for value in BAD_PAGES:
        for name in ("page", "page_bloquees"):
            sep = "&" if "?" in path else "?"
            answer = admin.get(f"{url}{path}{sep}{name}={value}", timeout=20)
            assert answer.status_code == 200, (path, name, value, answer.text[:300])
    # Past the end: the last page.
    answer = admin.get(f"{url}/hq/flotte?page=999", timeout=20)
    assert "page 3 sur 3" in answer.text


def _a_product(chain: dict[str, Any]) -> tuple[str, str]:
    """A product held by many stores, and its category's slug."""
    db = open_hub_db(chain["data"])
    try:
        return tuple(
            hdb.execute(
                db,
                "SELECT p.ref, c.slug FROM products p JOIN categories c ON c.id = p.category_id "
                "JOIN variants v ON v.product_pk = p.pk JOIN stock_levels l ON l.sku = v.sku "
                "WHERE l.qty > 0 GROUP BY p.ref, c.slug ORDER BY count(DISTINCT l.store_id) DESC, "
                "p.ref LIMIT 1",
            ).fetchone()
        )
    finally:
        db.close()


def test_a_product_lists_the_stores_that_hold_it_ten_a_page(chain):
    url = chain["url"]
    ref, _slug = _a_product(chain)
    page = requests.get(f"{url}/shop/produit/{ref}", timeout=20)
    colour = re.search(r'name="couleur" value="([^"]+)"', page.text).group(1)
    db = open_hub_db(chain["data"])
    try:
        holders = hdb.rows(
            db,
            "SELECT DISTINCT s.id, s.name, s.city FROM stock_levels l "
            "JOIN variants v ON v.sku = l.sku JOIN products p ON p.pk = v.product_pk "
            "JOIN stores s ON s.id = l.store_id "
            "WHERE p.ref = ? AND v.colour_code = ? AND l.qty > 0",
            [ref, colour],
        )
    finally:
        db.close()
    assert len(holders) > 10
    assert f"En stock dans {len(holders)} magasins" in page.text
    assert page.text.count('class="store-stock"') == 10
    assert "Page 1 sur" in page.text and 'rel="next"' in page.text
    city = holders[0]["city"]
    in_city = [h for h in holders if fold(city) in fold(f"{h['name']} {h['city']} {h['id']}")]
    found = requests.get(
        f"{url}/shop/produit/{ref}",
        params={"couleur": colour, "magasins": fold(city).upper()},
        timeout=20,
    )
    assert found.status_code == 200
    assert found.text.count('class="store-stock"') == min(10, len(in_city))


def test_the_checkout_chooser_is_searchable_and_paged(chain):
    url = chain["url"]
    ref, _slug = _a_product(chain)
    db = open_hub_db(chain["data"])
    try:
        sku = hdb.scalar(
            db,
            "SELECT v.sku FROM variants v JOIN products p ON p.pk = v.product_pk "
            "JOIN stock_levels l ON l.sku = v.sku WHERE p.ref = ? AND l.qty >= 1 "
            "GROUP BY v.sku ORDER BY count(*) DESC, v.sku LIMIT 1",
            [ref],
        )
        holders = hdb.scalar(
            db, "SELECT count(*) FROM stock_levels WHERE sku = ? AND qty >= 1", [sku]
        )
    finally:
        db.close()
    shop = requests.Session()
    token = _CSRF.search(shop.get(f"{url}/shop/", timeout=20).text).group(1)
    added = shop.post(
        f"{url}/shop/panier/ajouter", data={"sku": sku, "qty": "1", "csrf_token": token}
    )
    assert added.status_code == 200
    first = shop.get(f"{url}/shop/commande", timeout=20)
    assert first.status_code == 200
    assert first.text.count('class="store-choice') == 10
    assert f"{holders} magasins peuvent préparer tout votre panier" in first.text
    # Those that can serve the whole cart come first.
    marks = re.findall(r'class="avail (avail-ok|avail-short)"', first.text)
    assert marks == sorted(marks, key=lambda m: m != "avail-ok")
    second = shop.get(f"{url}/shop/commande", params={"page": 2}, timeout=20)
    assert second.text.count('class="store-choice') == 10
    assert not set(_choices(first.text)) & set(_choices(second.text))
    city = _stores_in_name_order(chain)[0]["city"]
    searched = shop.get(f"{url}/shop/commande", params={"magasins": city.lower()}, timeout=20)
    assert searched.status_code == 200 and searched.text.count('class="store-choice') >= 1


def _choices(html: str) -> list[str]:
    """The stores a chooser page offers."""
    return re.findall(
        r'class="store-choice[^"]*" href="/shop/commande\?magasin=(st-[0-9a-z]+)', html
    )
