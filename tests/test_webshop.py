"""The hub's web shop (/shop) over HTTP against a real hub, and on a phone in Chromium."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import zxingcpp
from PIL import Image

from app.core import cart_codec as codec
from app.core import clock
from app.core.cart_codec import CartLine
from app.hub import database as hdb
from app.hub.domain import carts, keys
from app.web.i18n import format_price

from .conftest import screenshot
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import LYON, PARIS, hub_db

QR = zxingcpp.BarcodeFormat.QRCode
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Shopper:
    """A browser session on the shop: follows the forms as a phone would."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.base + path, timeout=15, **kw)

    def post(self, path: str, data: dict, token: bool = True, **kw) -> requests.Response:
        if token:
            page = self.get("/shop/")
            data = {**data, "csrf_token": _CSRF.search(page.text).group(1)}
        return self.http.post(self.base + path, data=data, timeout=15, **kw)

    def add(self, sku: str, qty: int = 1) -> requests.Response:
        return self.post("/shop/panier/ajouter", {"sku": sku, "qty": str(qty)})

    def cart_id(self, data: Path) -> str:
        """The cart this session holds (the newest open cart with these lines)."""
        qr = self.get("/shop/panier/qr.png")
        assert qr.status_code == 200
        [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.content)), formats=QR)
        db = hub_db(data)
        try:
            return codec.read_cart_token(keys.public_keys(db), found.text).cart_id
        finally:
            db.close()


def _stocked(data: Path, store_id: str = LYON, n: int = 2, min_qty: int = 3) -> list[dict]:
    db = hub_db(data)
    try:
        return hdb.rows(
            db,
            "SELECT s.sku, p.ref, v.colour_code, coalesce(v.price_cents, p.price_cents) AS price "
            "FROM stock_levels s JOIN variants v ON v.sku = s.sku "
            "JOIN products p ON p.pk = v.product_pk "
            "WHERE s.store_id = ? AND s.qty >= ? ORDER BY s.sku LIMIT ?",
            [store_id, min_qty, n],
        )
    finally:
        db.close()


@pytest.fixture
def shopper(hub_server) -> Shopper:
    return Shopper(hub_server.url)


# --------------------------------------------------------------------------- pages


def test_browse_pages_answer_html_in_french_first_then_english(hub_server, shopper):
    home = shopper.get("/shop/")
    assert home.status_code == 200 and home.headers["Content-Type"].startswith("text/html")
    assert '<html lang="fr">' in home.text
    assert "script-src 'self'" in home.headers["Content-Security-Policy"]
    assert "<script" not in home.text and "style=" not in home.text
    slugs = re.findall(r'href="/shop/rayon/([a-z-]+)"', home.text)
    assert len(slugs) >= 10
    category = shopper.get(f"/shop/rayon/{slugs[0]}")
    refs = re.findall(r'href="/shop/produit/([A-Z0-9]+)"', category.text)
    assert category.status_code == 200 and refs
    product = shopper.get(f"/shop/produit/{refs[0]}")
    assert product.status_code == 200 and 'name="sku"' in product.text
    assert "style=" not in product.text  # colour dots are data images, not inline styles
    picture = shopper.get(f"/shop/image/{refs[0]}/0.png")
    assert picture.status_code == 200 and picture.headers["Content-Type"] == "image/png"
    switched = shopper.post("/shop/langue", {"lang": "en", "next": f"/shop/produit/{refs[0]}"})
    assert switched.status_code == 200 and switched.url.endswith(f"/shop/produit/{refs[0]}")
    assert '<html lang="en">' in switched.text
    assert shopper.post("/shop/langue", {"lang": "xx"}).status_code == 400
    # Never another site as "next".
    away = shopper.post(
        "/shop/langue", {"lang": "fr", "next": "//evil.example/"}, allow_redirects=False
    )
    assert away.headers["Location"] == "/shop/"


def test_search_ignores_accents_and_case_and_treats_syntax_as_text(hub_server, shopper):
    db = hub_db(hub_server.data)
    name, ref = db.execute(
        "SELECT name_fr, ref FROM products WHERE name_fr LIKE '%é%' ORDER BY pk LIMIT 1"
    ).fetchone()
    db.close()
    word = next(w for w in name.split() if "é" in w)
    plain = word.replace("é", "e").upper()
    found = shopper.get("/shop/recherche", params={"q": plain})
    assert found.status_code == 200 and f"/shop/produit/{ref}" in found.text
    for q in ("%", "_", "\\", '" OR 1=1 --', "NEAR(", "zzzzqqq"):
        page = shopper.get("/shop/recherche", params={"q": q})
        assert page.status_code == 200, q
    assert shopper.get("/shop/recherche", params={"q": "x" * 200}).status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/shop/produit/NOPE123",
        "/shop/produit/" + "A" * 300,
        "/shop/rayon/nope",
        "/shop/image/NOPE/0.png",
        "/shop/panier/c-AAAAAAAAAAAAAAAAAAAA?k=x",
        "/shop/panier/not-a-cart",
        "/shop/commande?magasin=st-nope00",
        "/shop/no-such-page",
        "/shop/produit/M1/extra/segments",
    ],
)
def test_bad_ids_are_404_pages(hub_server, shopper, path):
    if "commande" in path:  # the store chooser needs a cart to show
        shopper.add(_stocked(hub_server.data, n=1)[0]["sku"])
    resp = shopper.get(path)
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("text/html")


def test_forms_need_their_csrf_token(hub_server, shopper):
    [item] = _stocked(hub_server.data, n=1)
    refused = shopper.post("/shop/panier/ajouter", {"sku": item["sku"], "qty": "1"}, token=False)
    assert refused.status_code == 400 and refused.headers["Content-Type"].startswith("text/html")
    assert shopper.get("/shop/panier/qr.png").status_code == 404  # nothing was added
    forged = shopper.post(
        "/shop/panier/ajouter", {"sku": item["sku"], "csrf_token": "forged"}, token=False
    )
    assert forged.status_code == 400
    assert shopper.add(item["sku"]).status_code == 200
    other = Shopper(hub_server.url)  # another browser's token does not fit this session
    token = _CSRF.search(other.get("/shop/").text).group(1)
    stolen = shopper.post("/shop/panier/vider", {"csrf_token": token}, token=False)
    assert stolen.status_code == 400
    assert shopper.get("/shop/panier/qr.png").status_code == 200  # the cart is still there


# --------------------------------------------------------------------------- cart


def test_cart_lines_quantities_and_its_qr_token(hub_server, shopper):
    a, b = _stocked(hub_server.data)
    shopper.add(a["sku"], 2)
    page = shopper.add(b["sku"])
    assert page.url.endswith("/shop/panier") and page.text.count('class="cart-line"') == 2
    shopper.post("/shop/panier/quantite", {"sku": b["sku"], "qty": "3"})
    shopper.post("/shop/panier/quantite", {"sku": a["sku"], "qty": "99"})  # refused
    page = shopper.get("/shop/panier")
    total = re.search(r'id="cart-total">([^<]+)<', page.text).group(1)
    assert total == format_price(2 * a["price"] + 3 * b["price"], "fr")  # 20 is the most
    cart_id = shopper.cart_id(hub_server.data)
    qr = shopper.get("/shop/panier/qr.png")
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.content)), formats=QR)
    ref = codec.read_cart_token(keys.public_keys(hub_db(hub_server.data)), found.text)
    assert ref.cart_id == cart_id
    assert [(ln.sku, ln.qty, ln.price_cents) for ln in ref.lines] == [
        (a["sku"], 2, a["price"]),
        (b["sku"], 3, b["price"]),
    ]
    shopper.post("/shop/panier/retirer", {"sku": a["sku"]})
    assert shopper.get("/shop/panier").text.count('class="cart-line"') == 1
    # Thrown away: revoked for every store, and the QR code is gone.
    shopper.post("/shop/panier/vider", {})
    db = hub_db(hub_server.data)
    assert db.execute("SELECT status FROM carts WHERE id = ?", [cart_id]).fetchone()[0] == "revoked"
    assert (
        db.execute(
            "SELECT count(*) FROM changes WHERE kind = 'revocation' AND key = ?", [cart_id]
        ).fetchone()[0]
        == 1
    )
    db.close()
    assert shopper.get("/shop/panier/qr.png").status_code == 404


def test_a_cart_link_opens_the_cart_in_another_browser(hub_server):
    [item] = _stocked(hub_server.data, n=1)
    db = hub_db(hub_server.data)
    try:
        cart_id = carts.create_cart(db, "web", [CartLine(item["sku"], 2, item["price"])])
        path = carts.cart_path(db, cart_id)
    finally:
        db.close()
    phone = Shopper(hub_server.url)
    page = phone.get(path)
    assert page.status_code == 200 and page.url.endswith("/shop/panier")
    assert phone.cart_id(hub_server.data) == cart_id
    assert phone.get(path.replace("?k=", "?k=x")).status_code == 404


# --------------------------------------------------------------------------- import


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "garbage",
        "A*1",
        "A*0*100",
        "A*21*100",
        "A*1*100,A*1*100",
        "A*-1*100",
        "A*1*1e3",
        "*1*100",
        "A*1*100," * 60,
        "é*1*100",
        "A*1*100\x00",
        "A*1*99999999999",
        "<script>*1*1",
        "x" * 5000,
    ],
)
def test_import_of_garbage_is_a_friendly_400(hub_server, shopper, raw):
    resp = shopper.get("/shop/panier/importer", params={"l": raw})
    assert resp.status_code == 400, raw
    assert resp.headers["Content-Type"].startswith("text/html") and "<script>" not in resp.text
    db = hub_db(hub_server.data)
    assert db.execute("SELECT count(*) FROM carts").fetchone()[0] == 0
    db.close()


def test_import_from_a_kiosk_at_todays_prices(hub_server, shopper):
    a, b = _stocked(hub_server.data)
    shopper.add(a["sku"])  # the cart this phone had before
    before = shopper.cart_id(hub_server.data)
    lines = [
        CartLine(a["sku"], 2, a["price"]),
        CartLine(b["sku"], 1, b["price"] + 250),
        CartLine("M000000-XXX-00", 1, 1000),
    ]
    url = "/shop/panier/importer?l=" + quote(codec.encode_lines(lines), safe="*,")
    page = shopper.get(url)
    assert page.status_code == 200 and 'id="import-note"' in page.text
    assert page.text.count('class="price-change"') == 1 and 'class="dropped"' in page.text
    assert page.text.count('class="cart-line"') == 2
    imported = shopper.cart_id(hub_server.data)
    assert imported != before
    db = hub_db(hub_server.data)
    assert db.execute("SELECT source FROM carts WHERE id = ?", [imported]).fetchone()[0] == "kiosk"
    assert db.execute(
        "SELECT sku, qty, price_cents FROM cart_lines WHERE cart_id = ? ORDER BY position",
        [imported],
    ).fetchall() == [(a["sku"], 2, a["price"]), (b["sku"], 1, b["price"])]
    # Reloading the page makes no second cart.
    again = shopper.get(url)
    assert again.status_code == 200 and shopper.cart_id(hub_server.data) == imported
    assert db.execute("SELECT count(*) FROM carts").fetchone()[0] == 2
    db.close()
    # The cart this phone had before is one tap away.
    assert "/shop/panier/precedent" in again.text
    shopper.post("/shop/panier/precedent", {})
    assert shopper.cart_id(hub_server.data) == before


# --------------------------------------------------------------------------- checkout


def test_checkout_shows_the_stores_stock_and_places_the_order(hub_server, shopper):
    a, b = _stocked(hub_server.data, store_id=PARIS)
    shopper.add(a["sku"], 2)
    shopper.add(b["sku"])
    cart_id = shopper.cart_id(hub_server.data)
    db = hub_db(hub_server.data)
    levels = dict(
        db.execute(
            "SELECT sku, qty FROM stock_levels WHERE store_id = ? AND sku IN (?, ?)",
            [PARIS, a["sku"], b["sku"]],
        ).fetchall()
    )
    chooser = shopper.get("/shop/commande")
    assert chooser.status_code == 200 and f"magasin={PARIS}" in chooser.text
    assert 'id="place-order"' not in chooser.text  # no store chosen yet
    page = shopper.get(f"/shop/commande?magasin={PARIS}")
    stock = re.search(r'id="store-stock">(.*?)</ul>', page.text, re.S).group(1)
    for item in (a, b):
        line = re.search(rf'data-sku="{re.escape(item["sku"])}">(.*?)</li>', stock, re.S).group(1)
        assert f'stock-ok">{levels[item["sku"]]} ' in line, line  # THAT store's level
    # A bad e-mail address: the form comes back with the error, nothing is ordered.
    bad = shopper.post("/shop/commande", {"magasin": PARIS, "name": "Léa", "email": "lea"})
    assert bad.status_code == 400 and 'id="email-error"' in bad.text and 'value="Léa"' in bad.text
    assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
    details = {"magasin": PARIS, "name": "Léa Martin", "email": "lea@example.com"}
    placed = shopper.post("/shop/commande", details)
    assert placed.status_code == 200, placed.text[:500]
    assert re.search(r"/orders/CC-\d{8}\?k=", placed.url)
    number = re.search(r"CC-\d{8}", placed.url).group(0)
    assert number in placed.text and "Commande" in placed.text
    order = db.execute(
        "SELECT id, store_id, status FROM orders WHERE number = ?", [number]
    ).fetchone()
    assert order[1:] == (PARIS, "placed")
    assert db.execute("SELECT status, order_id FROM carts WHERE id = ?", [cart_id]).fetchone() == (
        "ordered",
        order[0],
    )
    revocation = db.execute(
        "SELECT store_id FROM changes WHERE kind = 'revocation' AND key = ?", [cart_id]
    ).fetchall()
    assert revocation == [(None,)]
    assert (
        db.execute(
            "SELECT qty FROM stock_levels WHERE store_id = ? AND sku = ?", [PARIS, a["sku"]]
        ).fetchone()[0]
        == levels[a["sku"]] - 2
    )
    db.close()
    # The cart is spent: the session starts afresh; my orders lists the order.
    assert shopper.get("/shop/panier/qr.png").status_code == 404
    mine = shopper.get("/shop/mes-commandes")
    assert (
        mine.status_code == 200 and number in mine.text and placed.url.split("/", 3)[3] in mine.text
    )
    assert number not in Shopper(hub_server.url).get("/shop/mes-commandes").text


def test_checkout_refuses_a_store_short_of_stock(hub_server, shopper):
    [item] = _stocked(hub_server.data, n=1)
    db = hub_db(hub_server.data)
    db.execute(
        "UPDATE stock_levels SET qty = 1 WHERE store_id = ? AND sku = ?", [LYON, item["sku"]]
    )
    db.close()
    shopper.add(item["sku"], 2)
    page = shopper.get(f"/shop/commande?magasin={LYON}")
    assert 'class="stock stock-short"' in page.text and 'id="place-order"' not in page.text
    # Posting anyway (an old page): refused with a message, the cart stays open.
    details = {"magasin": LYON, "name": "Léa", "email": "lea@example.com"}
    refused = shopper.post("/shop/commande", details)
    assert refused.status_code == 400
    db = hub_db(hub_server.data)
    assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM carts WHERE status = 'open'").fetchone()[0] == 1
    db.close()


# --------------------------------------------------------------------------- phone


def test_phone_browse_add_scan_the_cart_qr_and_collect_in_store(hub_server, browser):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="fr-FR", is_mobile=True, has_touch=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(hub_server.url + "/shop/")
        screenshot(page, "webshop-home-phone")
        # Nothing is wider than the phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.locator(".category-link").first.click()
        screenshot(page, "webshop-category-phone")
        page.locator(".card a").first.click()
        page.wait_for_selector("#add-to-cart")
        screenshot(page, "webshop-product-phone")
        size = page.locator("label.size:not(.is-out)").first
        box = size.bounding_box()
        assert box["height"] >= 48 and box["width"] >= 48  # a thumb's target
        size.click()
        page.click("#add-to-cart")
        page.wait_for_url("**/shop/panier")
        assert page.locator(".cart-line").count() == 1
        page.locator("#cart-qr").scroll_into_view_if_needed()
        page.wait_for_function("document.getElementById('cart-qr').naturalWidth > 0")
        screenshot(page, "webshop-cart-qr-phone")
        # What the kiosk camera sees: the QR image as shown on the screen.
        shot = page.locator("#cart-qr").screenshot()
        [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)), formats=QR)
        db = hub_db(hub_server.data)
        ref = codec.read_cart_token(keys.public_keys(db), found.text)
        [(sku, qty, price)] = db.execute(
            "SELECT sku, qty, price_cents FROM cart_lines WHERE cart_id = ?", [ref.cart_id]
        ).fetchall()
        assert ref.lines == (CartLine(sku, qty, price),)
        page.click("#to-checkout")
        store = db.execute(
            "SELECT store_id FROM stock_levels WHERE sku = ? AND qty >= 1 ORDER BY store_id",
            [sku],
        ).fetchone()[0]
        page.click(f"a.store-choice[href*='magasin={store}']")
        page.wait_for_selector("#place-order")
        page.fill("#name", "Camille Petit")
        page.fill("#email", "camille@example.com")
        screenshot(page, "webshop-checkout-phone")
        page.click("#place-order")
        page.wait_for_url(re.compile(r".*/orders/CC-\d{8}\?k=.*"))
        number = re.search(r"CC-\d{8}", page.url).group(0)
        assert page.locator("h1").inner_text().endswith(number)
        screenshot(page, "webshop-order-phone")
        assert db.execute("SELECT status FROM carts WHERE id = ?", [ref.cart_id]).fetchone()[0] == (
            "ordered"
        )
        db.close()
        page.goto(hub_server.url + "/shop/mes-commandes")
        assert page.locator(".order-card").count() == 1
        screenshot(page, "webshop-my-orders-phone")
        assert errors == []
    finally:
        context.close()


def test_shop_pages_have_no_serious_axe_violation_on_a_phone(hub_server, browser):
    from axe_playwright_python.sync_playwright import Axe

    [item] = _stocked(hub_server.data, n=1)
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="fr-FR")
    page = context.new_page()
    axe = Axe()
    problems: dict[str, list[str]] = {}

    def check(label: str) -> None:
        results = axe.run(page)
        assert results.response["passes"], label  # axe really looked at the page
        found = [
            f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if found:
            problems[label] = found

    try:
        page.goto(hub_server.url + "/shop/")
        check("home")
        page.goto(hub_server.url + "/shop/recherche?q=chaussures")
        check("search")
        page.goto(f"{hub_server.url}/shop/produit/{item['ref']}?couleur={item['colour_code']}")
        check("product")
        page.locator(f"input.size-input[value='{item['sku']}'] + label").click()
        page.click("#add-to-cart")
        page.wait_for_url("**/shop/panier")
        check("cart")
        page.goto(f"{hub_server.url}/shop/commande?magasin={LYON}")
        check("checkout")
        page.click("#place-order")  # empty form: the errors are announced
        check("checkout-errors")
        page.goto(hub_server.url + "/shop/mes-commandes")
        check("my-orders")
        page.goto(hub_server.url + "/shop/panier/importer?l=nonsense")
        check("import-error")
    finally:
        context.close()
    assert problems == {}


@pytest.mark.clock
def test_published_promotions_price_the_web_shop(hub_server, shopper):
    from app.hub.domain import promotions

    a, b = _stocked(hub_server.data)
    start = clock.utcnow() - timedelta(days=1)
    db = hub_db(hub_server.data)
    try:
        row = promotions.create(
            db,
            {
                "title_fr": "-20 % test",
                "title_en": "20% off test",
                "kind": "percent",
                "value": 20,
                "scope": "sku",
                "targets": [a["sku"]],
                "starts_local": start.strftime("%Y-%m-%dT%H:%M"),
                "ends_local": (start + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M"),
                "timezone": "UTC",
            },
            "test",
        )
        promotions.publish(db, row["id"], "test")
    finally:
        db.close()
    shopper.add(a["sku"], 2)
    page = shopper.add(b["sku"])
    discount = (2 * a["price"] * 20 + 50) // 100  # half up, once per line
    total = re.search(r'id="cart-total">([^<]+)<', page.text).group(1)
    assert total == format_price(2 * a["price"] + b["price"] - discount, "fr")
    assert "-20 % test" in page.text
    product = shopper.get(f"/shop/produit/{a['ref']}?couleur={a['colour_code']}")
    assert f"<del>{format_price(a['price'], 'fr')}</del>" in product.text


def test_product_pictures_may_be_kept_while_pages_and_qr_codes_are_not(hub_server, shopper):
    item = _stocked(hub_server.data, n=1)[0]
    ref = item["sku"].split("-")[0]
    picture = shopper.get(f"/shop/image/{ref}/0.png")
    assert picture.status_code == 200 and "max-age=86400" in picture.headers["Cache-Control"]
    shopper.add(item["sku"])
    assert shopper.get("/shop/panier").headers["Cache-Control"] == "no-store"
    assert shopper.get("/shop/panier/qr.png").headers["Cache-Control"] == "no-store"


def test_an_order_is_not_placed_at_a_total_the_shopper_did_not_see(hub_server, shopper):
    a, _ = _stocked(hub_server.data, store_id=PARIS)
    shopper.add(a["sku"], 2)
    page = shopper.get(f"/shop/commande?magasin={PARIS}")
    shown = int(re.search(r'name="total" value="(\d+)"', page.text).group(1))
    assert shown == 2 * a["price"]
    details = {"magasin": PARIS, "name": "Léa Martin", "email": "lea@example.com"}
    # The page was shown at another total (a promotion ended meanwhile): not placed.
    stale = shopper.post("/shop/commande", {**details, "total": str(shown - 500)})
    assert stale.status_code == 400 and 'data-error="price_changed"' in stale.text
    db = hub_db(hub_server.data)
    try:
        assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
    finally:
        db.close()
    # Confirmed at the total now shown: placed.
    placed = shopper.post("/shop/commande", {**details, "total": str(shown)})
    assert placed.status_code == 200 and re.search(r"/orders/CC-\d{8}\?k=", placed.url)
