"""The kiosk over real HTTP: a ``kiosk serve`` process on a free loopback port."""

from __future__ import annotations

import html
import re

import pytest
import requests

from app.demo import seed as seedmod

from .conftest import run_kiosk


def _in_stock_variant(db, min_qty=5):
    return db.execute(
        """SELECT v.sku, v.ean, p.ref, p.name_fr, l.qty FROM variants v
           JOIN products p ON p.pk = v.product_pk
           JOIN stock_levels l ON l.sku = v.sku
           JOIN stores s ON s.id = l.store_id AND s.is_self = 1
           WHERE l.qty >= ? ORDER BY p.pk, v.sku LIMIT 1""",
        [min_qty],
    ).fetchone()


def test_security_headers_on_every_page(store_server):
    for path in ("/", "/browse", "/search?q=velo", "/product/nope", "/healthz"):
        r = requests.get(store_server.url + path, timeout=5)
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_no_inline_script_in_pages(store_server, store_db):
    ref = _in_stock_variant(store_db)[2]
    for path in ("/", "/browse", f"/product/{ref}", "/search?q=tente"):
        html = requests.get(store_server.url + path, timeout=5).text
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag, tag
        assert not re.search(r"<[^>]+\son[a-z]+=", html)  # no inline event handlers


def test_attract_screen_is_french_by_default(store_server):
    html = requests.get(store_server.url + "/", timeout=5).text
    assert "Touchez l&#39;écran ou scannez un article" in html or "Touchez l'écran" in html
    assert seedmod.DEMO_STORES[0]["name"] in html
    assert 'id="promotions"' in html


def test_search_partial_for_htmx_full_page_otherwise(store_server):
    url = store_server.url + "/search"
    partial = requests.get(url, params={"q": "velo"}, headers={"HX-Request": "true"}, timeout=5)
    full = requests.get(url, params={"q": "velo"}, timeout=5)
    assert partial.status_code == full.status_code == 200
    assert "<html" not in partial.text and 'id="results"' in partial.text
    assert "<html" in full.text and 'id="results"' in full.text
    assert "HX-Request" in partial.headers["Vary"]
    assert "Vélo" in partial.text


@pytest.mark.parametrize("q", ['"', "*", "OR", "NEAR(", 'velo" OR "', "%", "';--", " "])
def test_search_survives_fts_and_sql_syntax(store_server, q):
    r = requests.get(store_server.url + "/search", params={"q": q}, timeout=5)
    assert r.status_code == 200
    assert 'id="results"' in r.text


def test_overlong_search_is_a_clear_400(store_server):
    r = requests.get(store_server.url + "/search", params={"q": "x" * 500}, timeout=5)
    assert r.status_code == 400
    assert "trop longue" in r.text


def test_html_in_search_is_escaped(store_server):
    r = requests.get(store_server.url + "/search", params={"q": "<b>zzz</b>"}, timeout=5)
    assert "<b>zzz</b>" not in r.text and "&lt;b&gt;zzz&lt;/b&gt;" in r.text


def test_html_in_product_data_is_escaped(store_server):
    r = requests.get(store_server.url + f"/product/{seedmod.HTML_PRODUCT_REF}", timeout=5)
    assert r.status_code == 200
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;" in r.text


def test_product_page_shows_stock_price_and_other_stores(store_server, store_db):
    sku, ean, ref, name, qty = _in_stock_variant(store_db)
    r = requests.get(store_server.url + f"/product/{ref}", params={"sku": sku}, timeout=5)
    assert r.status_code == 200
    assert f'data-sku="{sku}" data-qty="{qty}"' in r.text
    assert f"{qty} en stock" in r.text
    assert "Dans nos autres magasins" in r.text
    for other in seedmod.DEMO_STORES[1:]:
        assert other["name"] in r.text
    assert "€" in r.text


def test_unknown_product_is_a_friendly_404(store_server):
    r = requests.get(store_server.url + "/product/NOPE-123", timeout=5)
    assert r.status_code == 404
    assert "Nous ne trouvons pas cet article" in r.text


def test_scan_opens_the_product(store_server, store_db):
    sku, ean, ref, *_ = _in_stock_variant(store_db)
    r = requests.get(
        store_server.url + "/scan", params={"code": ean}, timeout=5, allow_redirects=False
    )
    assert r.status_code == 302
    assert f"/product/{ref}?sku={sku}" in r.headers["Location"]


def test_scan_with_a_wrong_check_digit_says_misread(store_server, store_db):
    ean = _in_stock_variant(store_db)[1]
    wrong = ean[:-1] + str((int(ean[-1]) + 1) % 10)
    r = requests.get(store_server.url + "/scan", params={"code": wrong}, timeout=5)
    assert r.status_code == 400
    assert "mal lu" in r.text


def test_scan_of_an_unknown_valid_code_is_friendly(store_server):
    r = requests.get(store_server.url + "/scan", params={"code": "4006381333931"}, timeout=5)
    assert r.status_code == 404
    assert "Nous ne trouvons pas cet article" in r.text


def test_unknown_category_and_page(store_server):
    assert requests.get(store_server.url + "/category/nope", timeout=5).status_code == 404
    r = requests.get(store_server.url + "/nowhere", timeout=5)
    assert r.status_code == 404 and "Cette page n'existe pas" in html.unescape(r.text)


def test_category_lists_products(store_server, store_db):
    slug = store_db.execute("SELECT slug FROM categories ORDER BY position LIMIT 1").fetchone()[0]
    r = requests.get(store_server.url + f"/category/{slug}", timeout=5)
    assert r.status_code == 200 and r.text.count('class="card"') > 0


def test_language_toggle_needs_csrf(store_server):
    s = requests.Session()
    r = s.post(store_server.url + "/lang", data={"lang": "en"}, timeout=5)
    assert r.status_code == 400


def test_language_toggle_switches_to_english_prices_per_locale(store_server, store_db):
    s = requests.Session()
    ref = _in_stock_variant(store_db)[2]
    page = s.get(store_server.url + f"/product/{ref}", timeout=5).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert re.search(r"\d+,\d\d\s€", page)  # "1 234,50 €"
    r = s.post(
        store_server.url + "/lang",
        data={"lang": "en", "csrf_token": token, "next": f"/product/{ref}"},
        timeout=5,
    )
    assert r.status_code == 200 and r.url.endswith(f"/product/{ref}")
    assert "In our other stores" in r.text
    assert re.search(r"€\d[\d,]*\.\d\d", r.text)  # "€1,234.50"
    # The "next" target is local only: never an open redirect.
    r = s.post(
        store_server.url + "/lang",
        data={"lang": "fr", "csrf_token": token, "next": "https://evil.example/"},
        timeout=5,
        allow_redirects=False,
    )
    assert r.headers["Location"] == "/"


def test_stock_poll_is_cheap_when_nothing_changed(store_server, store_db):
    sku, ean, ref, *_ = _in_stock_variant(store_db)
    url = store_server.url + f"/product/{ref}/stock"
    first = requests.get(url, params={"sku": sku}, timeout=5)
    assert first.status_code == 200 and first.headers.get("ETag")
    version = re.search(r'data-stock-version="(\d+)"', first.text).group(1)
    # htmx polls with the version it shows: 204, nothing to swap.
    assert requests.get(url, params={"sku": sku, "v": version}, timeout=5).status_code == 204
    # A plain HTTP client revalidates with its ETag: 304.
    again = requests.get(
        url, params={"sku": sku}, headers={"If-None-Match": first.headers["ETag"]}, timeout=5
    )
    assert again.status_code == 304


def test_stock_change_from_the_cli_shows_on_next_poll(store_server, store_data, store_db):
    sku, ean, ref, name, qty = _in_stock_variant(store_db)
    url = store_server.url + f"/product/{ref}/stock"
    first = requests.get(url, params={"sku": sku}, timeout=5)
    version = re.search(r'data-stock-version="(\d+)"', first.text).group(1)

    done = run_kiosk("stock", "adjust", ean, "-2", "--data", str(store_data))
    assert done.returncode == 0, done.stderr

    r = requests.get(url, params={"sku": sku, "v": version}, timeout=5)
    assert r.status_code == 200
    assert f'data-sku="{sku}" data-qty="{qty - 2}"' in r.text
    r = requests.get(
        url,
        params={"sku": sku, "v": version},
        headers={"If-None-Match": first.headers["ETag"]},
        timeout=5,
    )
    assert r.status_code == 200


def test_pictures_are_png(store_server, store_db):
    ref = _in_stock_variant(store_db)[2]
    r = requests.get(store_server.url + f"/picture/{ref}/0.png", timeout=10)
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert requests.get(store_server.url + f"/picture/{ref}/7.png", timeout=5).status_code == 404
    assert requests.get(store_server.url + "/picture/NOPE/0.png", timeout=5).status_code == 404


def test_session_reset_needs_csrf(store_server):
    assert requests.post(store_server.url + "/session/reset", timeout=5).status_code == 400


def test_huge_page_number_is_not_an_error(store_server, store_db):
    slug = store_db.execute("SELECT slug FROM categories LIMIT 1").fetchone()[0]
    r = requests.get(store_server.url + f"/category/{slug}?page=400000000000000000", timeout=5)
    assert r.status_code == 200


def test_a_barcode_typed_in_the_search_box_finds_its_product(store_server, store_db):
    sku, ean, ref, name, qty = _in_stock_variant(store_db)
    r = requests.get(
        store_server.url + "/search", params={"q": ean}, headers={"HX-Request": "true"}, timeout=5
    )
    assert r.text.count('class="card"') == 1 and f"/product/{ref}" in r.text


def test_search_fragments_follow_price_changes_from_the_hub(store_server, store_db):
    from app.store.sync import feed

    url = store_server.url + "/search"
    first = requests.get(url, params={"q": "velo"}, headers={"HX-Request": "true"}, timeout=5)
    row = store_db.execute_returning_dicts(
        "SELECT * FROM products WHERE name_fr LIKE 'Vélo%' ORDER BY pk LIMIT 1"
    )[0]
    variants = store_db.execute_returning_dicts(
        "SELECT * FROM variants WHERE product_pk = ?", [row["pk"]]
    )
    changed = {**row, "price_cents": 123456, "variants": variants}
    own = store_db.execute("SELECT id FROM stores WHERE is_self = 1").fetchone()[0]
    change = {"seq": 10**9, "kind": "product", "key": row["ref"], "data": changed}
    feed.apply_page(store_db, {"changes": [change], "cursor": str(10**9)}, own)
    again = requests.get(url, params={"q": "velo"}, headers={"HX-Request": "true"}, timeout=5)
    assert "1 234,56" not in first.text.replace("\u202f", " ").replace("\xa0", " ")
    assert "1 234,56" in again.text.replace("\u202f", " ").replace("\xa0", " ")


def test_attract_screen_forgets_a_language_chosen_there(store_server):
    s = requests.Session()
    page = s.get(store_server.url + "/", timeout=5).text
    assert 'data-idle-seconds="0"' in page  # nothing to forget yet
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(
        store_server.url + "/lang", data={"lang": "en", "csrf_token": token, "next": "/"}, timeout=5
    )
    assert 'data-idle-seconds="60"' in r.text  # now it counts down like any page


def test_a_store_waiting_for_its_first_sync_says_so(tmp_path, server_factory):
    from app.core import db as dbmod
    from app.store.migrations import migrate

    data = tmp_path / "empty"
    migrate(dbmod.connect(dbmod.db_path(data)))
    server = server_factory(data)
    for path in ("/", "/browse", "/search?q=velo"):
        assert requests.get(server.url + path, timeout=5).status_code == 200
    assert "Le catalogue arrive du siège" in requests.get(server.url + "/browse", timeout=5).text


def test_a_wrong_method_is_a_page_that_says_allow(client):
    r = client.delete("/healthz")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
    assert r.mimetype == "text/html" and "Content-Security-Policy" in r.headers
