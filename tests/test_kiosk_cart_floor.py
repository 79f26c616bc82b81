"""The kiosk's cart screens on the shop floor (issue 13): a phone cart scanned while the
kiosk cart holds items asks "merge or replace" (merge first) and never loses a line; no
file picker on a shopper's kiosk (a staff tablet keeps the photo); the reservation ticket
shows its total and "Terminé" forgets the shopper; a 30-line cart keeps its total and
actions in sight at both kiosk orientations."""

from __future__ import annotations

import io
import re

import pytest
import qrcode

from app.core import cart_codec, clock
from app.core.cart_codec import CartLine
from app.store.app import create_app
from app.store.domain import carts
from app.store.views import scanned_cart

from .axe_helpers import assert_axe_clean as _axe_clean
from .cart_helpers import cart_token, stocked_variants
from .conftest import CHROMIUM, CHROMIUM_ARGS, screenshot, staff_login, staff_login_page
from .order_helpers import install_hub_key
from .test_cart_browser import _y4m

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
KEY = re.compile(r'name="key" value="([0-9a-f]+)"')


@pytest.fixture
def keyed_db(store_db):
    install_hub_key(store_db)
    return store_db


@pytest.fixture
def client(store_data, keyed_db):
    """A test client of the store app with CSRF on, as in production."""
    app = create_app(
        {"DATA_DIR": str(store_data), "TESTING": True, "SHOP_URL": "http://127.0.0.1:9/"}
    )
    return app.test_client()


def _csrf(client, path: str = "/panier") -> str:
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def _cart(client) -> list[list]:
    with client.session_transaction() as sess:
        return [list(line) for line in sess.get("cart", {}).get("lines", [])]


def _pending(client):
    with client.session_transaction() as sess:
        return sess.get("pending_cart")


def _token(*lines: tuple[dict, int]) -> str:
    return cart_token([CartLine(v["sku"], qty, v["price_cents"]) for v, qty in lines])


def _two_carts(client, db):
    """A kiosk cart (a: 2, b: 1) and a phone cart (a: 1, c: 3) scanned over it."""
    a, b, c = stocked_variants(db, 3)
    assert client.get("/scan", query_string={"code": _token((a, 2), (b, 1))}).status_code == 302
    resp = client.get("/scan", query_string={"code": _token((a, 1), (c, 3))})
    return a, b, c, resp


# --- The domain rule ------------------------------------------------------------------


def test_merge_sums_the_same_variant_appends_the_others_and_keeps_what_does_not_fit():
    kiosk = [["A", 2, 1000], ["B", 1, 500]]
    merged, left, capped = carts.merge_lines(kiosk, [["A", 3, 900], ["C", 1, 700]])
    assert merged == [["A", 5, 1000], ["B", 1, 500], ["C", 1, 700]] and left == capped == []
    assert kiosk == [["A", 2, 1000], ["B", 1, 500]]  # the kiosk's list is not changed
    full = [[f"S{i}", 1, 1] for i in range(carts.MAX_KIOSK_LINES)]
    merged, left, capped = carts.merge_lines(full, [["S0", 1, 1], ["NEW", 2, 3]])
    assert len(merged) == carts.MAX_KIOSK_LINES and merged[0] == ["S0", 2, 1]
    assert left == [["NEW", 2, 3]] and capped == []  # told, never dropped silently


def test_merge_returns_the_units_over_the_per_line_limit():
    # Review finding 4: 19 + 5 makes a line of 20 (MAX_QTY); the 4 units that do not fit
    # are returned with the lines left out, so the shopper is told about them too.
    top = cart_codec.MAX_QTY
    merged, left, capped = carts.merge_lines(
        [["A", top - 1, 1], ["B", 2, 5]], [["A", 5, 1], ["B", 1, 5], ["C", top, 7]]
    )
    assert merged == [["A", top, 1], ["B", 3, 5], ["C", top, 7]] and left == []
    assert capped == [["A", 4, 1]]


# --- Merge or replace, over HTTP ------------------------------------------------------


def test_an_empty_kiosk_cart_takes_the_phone_cart_without_a_question(client, keyed_db):
    a, b = stocked_variants(keyed_db, 2)
    resp = client.get("/scan", query_string={"code": _token((a, 1), (b, 2))})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/panier")
    assert [line[:2] for line in _cart(client)] == [[a["sku"], 1], [b["sku"], 2]]
    assert _pending(client) is None


def test_a_phone_cart_over_a_full_kiosk_cart_asks_and_changes_nothing_yet(client, keyed_db):
    a, b, c, resp = _two_carts(client, keyed_db)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/panier/fusion")
    assert [line[:2] for line in _cart(client)] == [[a["sku"], 2], [b["sku"], 1]]
    page = client.get("/panier/fusion").get_data(as_text=True)
    assert "Ajouter le panier de votre téléphone\u00a0?" in page
    buttons = re.findall(r'<button class="([^"]+)" type="submit" name="choice" value="(\w+)"', page)
    # Merge is the first answer and the prominent one; replace needs its own tap.
    assert [value for _cls, value in buttons] == ["merge", "replace", "keep"]
    assert "btn-primary" in buttons[0][0] and "btn-primary" not in buttons[1][0]
    assert "3 articles" in page and "4 articles" in page  # both carts, counted in French
    # The phone cart waits on the server's side of the session, not in the page.
    assert 'name="lines"' not in page and c["sku"] not in re.sub(r"<[^>]+>", "", page)


def test_merge_sums_the_lines_of_both_carts(client, keyed_db):
    a, b, c, _ = _two_carts(client, keyed_db)
    page = client.get("/panier/fusion").get_data(as_text=True)
    csrf, key = CSRF.search(page).group(1), KEY.search(page).group(1)
    resp = client.post("/panier/fusion", data={"csrf_token": csrf, "key": key, "choice": "merge"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/panier")
    assert [line[:2] for line in _cart(client)] == [[a["sku"], 3], [b["sku"], 1], [c["sku"], 3]]
    assert _pending(client) is None
    html = client.get("/panier").get_data(as_text=True)
    assert all(f'data-sku="{v["sku"]}"' in html for v in (a, b, c))


def test_replace_takes_the_phone_cart_only_on_its_explicit_tap(client, keyed_db):
    a, b, c, _ = _two_carts(client, keyed_db)
    page = client.get("/panier/fusion").get_data(as_text=True)
    csrf, key = CSRF.search(page).group(1), KEY.search(page).group(1)
    client.post("/panier/fusion", data={"csrf_token": csrf, "key": key, "choice": "replace"})
    assert [line[:2] for line in _cart(client)] == [[a["sku"], 1], [c["sku"], 3]]


def test_keep_forgets_the_phone_cart_and_bad_answers_change_nothing(client, keyed_db):
    a, b, c, _ = _two_carts(client, keyed_db)
    before = _cart(client)
    page = client.get("/panier/fusion").get_data(as_text=True)
    csrf, key = CSRF.search(page).group(1), KEY.search(page).group(1)
    # No CSRF token: refused. An unknown choice: refused. A stale page's key: asked again.
    assert client.post("/panier/fusion", data={"key": key, "choice": "replace"}).status_code == 400
    bad = client.post("/panier/fusion", data={"csrf_token": csrf, "key": key, "choice": "x"})
    assert bad.status_code == 400
    stale = client.post(
        "/panier/fusion", data={"csrf_token": csrf, "key": "0" * 32, "choice": "replace"}
    )
    assert stale.headers["Location"].endswith("/panier/fusion")
    assert _cart(client) == before and _pending(client) is not None
    client.post("/panier/fusion", data={"csrf_token": csrf, "key": key, "choice": "keep"})
    assert _cart(client) == before and _pending(client) is None
    # Nothing waiting any more: the question page goes back to the cart.
    assert client.get("/panier/fusion").headers["Location"].endswith("/panier")


def test_a_waiting_phone_cart_expires_and_the_same_cart_again_asks_nothing(
    client, keyed_db, fake_clock
):
    a, b, c, _ = _two_carts(client, keyed_db)
    fake_clock.advance(scanned_cart.PENDING_TTL_S + 1)
    assert client.get("/panier/fusion").headers["Location"].endswith("/panier")
    assert [line[:2] for line in _cart(client)] == [[a["sku"], 2], [b["sku"], 1]]
    # Scanning the cart that is already here, unchanged, is not a second cart.
    again = client.get("/scan", query_string={"code": _token((a, 2), (b, 1))})
    assert again.headers["Location"].endswith("/panier") and _pending(client) is None


def _photo(client, token: str):
    buf = io.BytesIO()
    qrcode.make(token).save(buf, "PNG")
    return client.post(
        "/panier/photo",
        data={"csrf_token": _csrf(client), "photo": (io.BytesIO(buf.getvalue()), "qr.png")},
        content_type="multipart/form-data",
    )


def test_a_shoppers_kiosk_refuses_a_photo_upload(client, store_data, keyed_db):
    # Review finding 8: hiding the picker is not enough; the upload itself is refused.
    a, b = stocked_variants(keyed_db, 2)
    client.get("/scan", query_string={"code": _token((a, 1))})
    resp = _photo(client, _token((b, 1)))
    assert resp.status_code == 403 and "<html" in resp.get_data(as_text=True)  # a page
    assert [line[:2] for line in _cart(client)] == [[a["sku"], 1]] and _pending(client) is None
    staff_login(client, store_data)  # a staff tablet (the login starts a new session)
    assert _photo(client, _token((b, 1))).headers["Location"].endswith("/panier")
    assert [line[:2] for line in _cart(client)] == [[b["sku"], 1]]


def test_scanning_a_merged_phone_cart_again_does_not_add_it_twice(client, keyed_db):
    # Review finding 3: kiosk cart A x1, merge the phone cart {B x2}, scan that phone
    # again: no second question, no B x4; the shopper is told it is already here.
    a, b = stocked_variants(keyed_db, 2)
    client.get("/scan", query_string={"code": _token((a, 1))})
    phone = _token((b, 2))
    assert (
        client.get("/scan", query_string={"code": phone})
        .headers["Location"]
        .endswith("/panier/fusion")
    )
    page = client.get("/panier/fusion").get_data(as_text=True)
    data = {"csrf_token": CSRF.search(page).group(1), "key": KEY.search(page).group(1)}
    client.post("/panier/fusion", data={**data, "choice": "merge"})
    merged = [[a["sku"], 1], [b["sku"], 2]]
    assert [line[:2] for line in _cart(client)] == merged
    for again in (phone, phone):
        resp = client.get("/scan", query_string={"code": again})
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/panier?deja=1")
        assert _pending(client) is None and [line[:2] for line in _cart(client)] == merged
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "data-already" in html
    assert "Le panier de votre téléphone est déjà dans ce panier\u00a0:" in html
    assert "data-already" not in client.get("/panier").get_data(as_text=True)


def test_update_lines_brings_the_phone_quantities_without_summing():
    kiosk = [["A", 1, 10], ["B", 4, 5]]
    updated, left = carts.update_lines(kiosk, [["B", 2, 5], ["A", 3, 10], ["C", 1, 7]])
    assert updated == [["A", 3, 10], ["B", 4, 5], ["C", 1, 7]] and left == []
    full = [[f"S{i}", 1, 1] for i in range(carts.MAX_KIOSK_LINES)]
    updated, left = carts.update_lines(full, [["S0", 1, 1], ["NEW", 2, 3]])
    assert updated == full and left == [["NEW", 2, 3]]


def test_a_merged_phone_cart_changed_since_brings_only_its_changes(client, keyed_db):
    # The phone cart {B x2} merged, then B x3 and C x1 on the phone, scanned again: B
    # becomes 3 (not 2 + 3), C is added; what was only in the kiosk cart stays.
    a, b, c = stocked_variants(keyed_db, 3)
    phone_id = cart_codec.new_cart_id()
    client.get("/scan", query_string={"code": _token((a, 1))})
    client.get(
        "/scan", query_string={"code": cart_token([CartLine(b["sku"], 2, 1)], cart_id=phone_id)}
    )
    page = client.get("/panier/fusion").get_data(as_text=True)
    data = {"csrf_token": CSRF.search(page).group(1), "key": KEY.search(page).group(1)}
    client.post("/panier/fusion", data={**data, "choice": "merge"})
    changed = cart_token([CartLine(b["sku"], 3, 1), CartLine(c["sku"], 1, 1)], cart_id=phone_id)
    resp = client.get("/scan", query_string={"code": changed})
    assert resp.status_code == 302 and "deja=1" in resp.headers["Location"]
    assert _pending(client) is None
    assert [line[:2] for line in _cart(client)] == [[a["sku"], 1], [b["sku"], 3], [c["sku"], 1]]
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'data-already="updated"' in html and "seul ce qui a changé" in html
    again = client.get("/scan", query_string={"code": changed})  # and once more: nothing
    assert again.headers["Location"].endswith("/panier?deja=1")
    assert [line[:2] for line in _cart(client)] == [[a["sku"], 1], [b["sku"], 3], [c["sku"], 1]]


def test_the_kiosk_cart_scanned_again_after_a_merge_is_recognised_too(client, keyed_db):
    a, b = stocked_variants(keyed_db, 2)
    first = _token((a, 1))
    client.get("/scan", query_string={"code": first})
    client.get("/scan", query_string={"code": _token((b, 2))})
    page = client.get("/panier/fusion").get_data(as_text=True)
    data = {"csrf_token": CSRF.search(page).group(1), "key": KEY.search(page).group(1)}
    client.post("/panier/fusion", data={**data, "choice": "merge"})
    resp = client.get("/scan", query_string={"code": first})
    assert resp.headers["Location"].endswith("/panier?deja=1")
    assert [line[:2] for line in _cart(client)] == [[a["sku"], 1], [b["sku"], 2]]


def test_the_merge_question_tells_the_units_over_the_line_limit(client, keyed_db):
    # Review finding 4, on screen: 19 + 5 of the same item, 4 of them cannot be added.
    (a,) = stocked_variants(keyed_db, 1)
    top = cart_codec.MAX_QTY
    client.get("/scan", query_string={"code": _token((a, top - 1))})
    client.get("/scan", query_string={"code": _token((a, 5))})
    page = client.get("/panier/fusion").get_data(as_text=True)
    assert 'data-capped="4"' in page
    assert (
        f"Une ligne contient au plus {top} fois le même article\u00a0: 4 articles de votre "
        "téléphone ne sont pas ajoutés si vous fusionnez." in page
    )
    assert "data-left-out" not in page


def test_a_photo_of_a_phone_cart_asks_too(client, store_data, keyed_db):
    staff_login(client, store_data)  # a staff tablet: the only place a photo is taken
    a, b = stocked_variants(keyed_db, 2)
    client.get("/scan", query_string={"code": _token((a, 1))})
    buf = io.BytesIO()
    qrcode.make(_token((b, 1))).save(buf, "PNG")
    resp = client.post(
        "/panier/photo",
        data={"csrf_token": _csrf(client), "photo": (io.BytesIO(buf.getvalue()), "qr.png")},
        content_type="multipart/form-data",
    )
    assert resp.headers["Location"].endswith("/panier/fusion")
    assert [line[:2] for line in _cart(client)] == [[a["sku"], 1]]


def test_thirty_lines_waiting_over_thirty_fit_the_cookie_and_the_overflow_is_told(client, keyed_db):
    variants = stocked_variants(keyed_db, 60)
    assert len(variants) == 60
    kiosk = [[v["sku"], 1, v["price_cents"]] for v in variants[:30]]
    phone = [[v["sku"], 2, v["price_cents"]] for v in variants[30:]]
    client.get("/panier")
    with client.session_transaction() as sess:
        sess["cart"] = {"lines": kiosk}
        sess["pending_cart"] = {
            "lines": phone,
            "id": cart_codec.new_cart_id(),
            "self_contained": False,
            "scanned_at": int(clock.now_s()),
            "key": "ab" * 16,
        }
    resp = client.get("/panier/fusion")
    page = resp.get_data(as_text=True)
    assert 'data-left-out="30"' in page and "30 lignes de votre téléphone" in page
    # Both carts live in the signed session cookie: it stays under a browser's 4 KB.
    cookie = client.get_cookie(client.application.config["SESSION_COOKIE_NAME"])
    assert cookie is not None and len(cookie.value) < 3800, len(cookie.value)


# --- The scan page: no file picker on a kiosk ------------------------------------------


def test_the_kiosk_scan_page_has_no_file_picker_and_a_staff_tablet_has_one(
    client, store_data, keyed_db
):
    kiosk = client.get("/panier/scanner").get_data(as_text=True)
    assert 'type="file"' not in kiosk and "photo-form" not in kiosk
    assert "présentez votre QR code sous le lecteur" in kiosk  # no "send a photo" either
    staff_login(client, store_data)
    tablet = client.get("/panier/scanner").get_data(as_text=True)
    assert len(re.findall(r'<input[^>]+type="file"', tablet)) == 1


# --- The reservation ticket ----------------------------------------------------------


def _reserve(client, db):
    a, b = stocked_variants(db, 2, here_min=3)
    client.get("/scan", query_string={"code": _token((a, 2), (b, 1))})
    page = client.get("/panier").get_data(as_text=True)
    request_id = re.search(r'name="request_id" value="([^"]+)"', page).group(1)
    resp = client.post(
        "/panier/reserver",
        data={"csrf_token": CSRF.search(page).group(1), "request_id": request_id},
    )
    assert resp.status_code == 302
    return a, b, resp.headers["Location"]


def test_the_ticket_shows_its_total_and_finished_forgets_the_shopper(client, keyed_db):
    a, b, where = _reserve(client, keyed_db)
    ticket = client.get(where).get_data(as_text=True)
    expected = carts.price_lines(keyed_db, [(a["sku"], 2), (b["sku"], 1)]).total_cents
    assert re.search(rf'ticket-total">[^<]*<strong data-cents="{expected}">', ticket)
    form = re.search(
        r'<form method="post" action="([^"]+)" class="ticket-done">(.*?)</form>', ticket, re.S
    )
    assert form and form.group(1) == "/session/reset" and "Terminé" in form.group(2)
    assert 'name="csrf_token"' in form.group(2)
    client.get("/scan", query_string={"code": _token((a, 1))})  # something left in the cart
    done = client.post("/session/reset", data={"csrf_token": CSRF.search(ticket).group(1)})
    assert done.status_code == 302 and done.headers["Location"].endswith("/")
    assert _cart(client) == []
    assert client.get(where).status_code == 404  # the next shopper cannot see the ticket
    assert 'class="cart-empty"' in client.get("/panier").get_data(as_text=True)


def test_the_ticket_total_is_an_estimate_at_todays_prices(client, keyed_db):
    # Review finding 17: the total is priced when the ticket is viewed, not recorded with
    # the reservation: it is worded as an estimate, not as what the till will charge.
    _a, _b, where = _reserve(client, keyed_db)
    ticket = client.get(where).get_data(as_text=True)
    assert re.search(r'ticket-total">Total estimé, aux prix du jour <strong data-cents=', ticket)
    assert "La caisse applique les prix en vigueur au moment du paiement." in ticket
    assert "Total à régler en caisse" not in ticket


def test_finished_on_a_staff_tablet_ends_the_shopper_but_keeps_the_staff_login(
    client, store_data, keyed_db
):
    # Review finding 16: "Terminé" forgets the shopper (cart, ticket), not the staff login.
    staff_login(client, store_data)
    a, _b, where = _reserve(client, keyed_db)
    client.get("/scan", query_string={"code": _token((a, 1))})
    assert _cart(client) != []
    ticket = client.get(where).get_data(as_text=True)
    done = client.post("/session/reset", data={"csrf_token": CSRF.search(ticket).group(1)})
    assert done.status_code == 302 and done.headers["Location"].endswith("/")
    assert _cart(client) == [] and client.get(where).status_code == 404
    with client.session_transaction() as sess:
        assert sess.get("staff") and sess.get("staff_sid") and "reservations" not in sess
    # Still logged in: the staff tablet still offers the photo of a cart.
    tablet = client.get("/panier/scanner").get_data(as_text=True)
    assert len(re.findall(r'<input[^>]+type="file"', tablet)) == 1


# --- In a browser ----------------------------------------------------------------------


@pytest.fixture
def cart_store(keyed_db, store_data, server_factory):
    return server_factory(store_data)


def _burst(page, text: str) -> None:
    page.wait_for_load_state("networkidle")
    page.keyboard.type(text, delay=1)
    page.keyboard.press("Enter")


def _qty(page, sku: str) -> int:
    plus = page.locator(f'.cart-line[data-sku="{sku}"] .cart-qty button').nth(1)
    return int(plus.get_attribute("value")) - 1


@pytest.mark.browser
def test_browser_scanner_prompt_merge_by_default_then_replace(browser, cart_store, keyed_db):
    a, b, c = stocked_variants(keyed_db, 3)
    ctx = browser.new_context(viewport={"width": 1080, "height": 1920}, locale="fr-FR")
    page = ctx.new_page()
    try:
        page.goto(cart_store.url + "/")
        _burst(page, _token((a, 2), (b, 1)))  # empty kiosk cart: loaded at once
        page.wait_for_url("**/panier")
        assert page.locator(".cart-line").count() == 2
        _burst(page, _token((a, 1), (c, 3)))  # the handheld scanner, cart holding items
        page.wait_for_url("**/panier/fusion")
        merge = page.get_by_role("button", name=re.compile("Fusionner les deux paniers"))
        replace = page.get_by_role("button", name=re.compile("Remplacer par le panier"))
        m, r = merge.bounding_box(), replace.bounding_box()
        assert m["y"] < r["y"] and m["height"] > r["height"]  # first and most prominent
        assert m["y"] + m["height"] <= 1920
        screenshot(page, "cart-floor-merge-prompt")
        _axe_clean(page, "merge prompt")
        merge.click()
        page.wait_for_url("**/panier")
        assert [_qty(page, v["sku"]) for v in (a, b, c)] == [3, 1, 3]
        _burst(page, _token((b, 4)))
        page.wait_for_url("**/panier/fusion")
        page.get_by_role("button", name=re.compile("Remplacer par le panier")).click()
        page.wait_for_url("**/panier")
        assert page.locator(".cart-line").count() == 1 and _qty(page, b["sku"]) == 4
    finally:
        ctx.close()


@pytest.mark.browser
def test_browser_camera_scan_over_a_cart_asks_too(browser, cart_store, keyed_db, tmp_path):
    a, b = stocked_variants(keyed_db, 2)
    video = _y4m(tmp_path / "qr.y4m", _token((b, 2)))
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    camera_browser = browser.browser_type.launch(executable_path=CHROMIUM, args=args)
    try:
        ctx = camera_browser.new_context(viewport={"width": 1920, "height": 1080}, locale="fr-FR")
        ctx.grant_permissions(["camera"], origin=cart_store.url)
        page = ctx.new_page()
        page.goto(cart_store.url + "/")
        _burst(page, _token((a, 1)))
        page.wait_for_url("**/panier")
        page.goto(cart_store.url + "/panier/scanner")
        assert page.locator('input[type="file"]').count() == 0  # a kiosk: no file picker
        page.wait_for_url("**/panier/fusion", timeout=15000)  # only the camera read it
        page.get_by_role("button", name=re.compile("Fusionner les deux paniers")).click()
        page.wait_for_url("**/panier")
        assert [_qty(page, v["sku"]) for v in (a, b)] == [1, 2]
    finally:
        camera_browser.close()


@pytest.mark.browser
def test_browser_staff_tablet_keeps_the_photo(browser, cart_store, store_data):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = ctx.new_page()
    try:
        page.goto(cart_store.url + "/panier/scanner")
        assert page.locator('input[type="file"]').count() == 0
        _axe_clean(page, "kiosk scan page")
        staff_login_page(page, cart_store.url, store_data)
        page.goto(cart_store.url + "/panier/scanner")
        assert page.locator('input[type="file"]').count() == 1
        assert page.locator("#cart-photo").is_visible()
        _axe_clean(page, "staff tablet scan page")
    finally:
        ctx.close()


@pytest.mark.browser
@pytest.mark.parametrize("size", [(1080, 1920), (1920, 1080)], ids=["portrait", "landscape"])
def test_browser_ticket_total_and_finished_returns_to_the_attract_screen(
    browser, cart_store, keyed_db, size
):
    a, b = stocked_variants(keyed_db, 2, here_min=3)
    width, height = size
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="fr-FR")
    page = ctx.new_page()
    try:
        page.goto(cart_store.url + "/")
        _burst(page, _token((a, 2), (b, 1)))
        page.wait_for_url("**/panier")
        page.get_by_role("button", name=re.compile("Réserver ce qui est ici")).click()
        page.wait_for_url("**/panier/reservation/*")
        expected = carts.price_lines(keyed_db, [(a["sku"], 2), (b["sku"], 1)]).total_cents
        total = page.locator(".ticket-total strong")
        assert total.get_attribute("data-cents") == str(expected) and total.is_visible()
        done = page.get_by_role("button", name="Terminé")
        box = done.bounding_box()
        assert box and box["y"] + box["height"] <= height  # on screen without scrolling
        screenshot(page, f"cart-floor-ticket-{width}x{height}")
        _axe_clean(page, "reservation ticket")
        done.click()
        page.wait_for_url(cart_store.url + "/")
        assert page.locator(".cart-link .count").count() == 0
        page.goto(cart_store.url + "/panier")
        assert page.locator(".cart-empty").is_visible()
    finally:
        ctx.close()


def _in_view(page, locator) -> bool:
    """Whether ``locator`` lies wholly inside the viewport once the page is at rest (the
    cart panel refreshes itself every 2 s: measured again for up to a second)."""
    size = page.viewport_size
    for _ in range(20):
        box = locator.bounding_box()
        if box and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 0.5:
            return True
        page.wait_for_timeout(50)
    return False


@pytest.mark.browser
def test_browser_thirty_line_cart_keeps_total_and_actions_in_view(browser, cart_store, keyed_db):
    variants = stocked_variants(keyed_db, carts.MAX_KIOSK_LINES)
    ctx = browser.new_context(viewport={"width": 1080, "height": 1920}, locale="fr-FR")
    page = ctx.new_page()
    try:
        page.goto(cart_store.url + "/panier")
        csrf = page.locator('input[name="csrf_token"]').first.get_attribute("value")
        for v in variants:
            resp = page.request.post(
                cart_store.url + "/panier/ajouter",
                form={"csrf_token": csrf, "sku": v["sku"]},
                max_redirects=0,
            )
            assert resp.status == 302
        for width, height, name in ((1080, 1920, "portrait"), (1920, 1080, "landscape")):
            page.set_viewport_size({"width": width, "height": height})
            page.goto(cart_store.url + "/panier")
            assert page.locator(".cart-line").count() == 30
            scroll = page.evaluate("document.documentElement.scrollHeight")
            assert scroll > 2 * height  # a list far longer than the screen
            total = page.locator(".cart-footer .cart-total")
            actions = page.locator(".cart-footer .cart-actions .btn")
            assert actions.count() >= 3
            for y in (0, scroll // 2, scroll):
                page.evaluate(f"window.scrollTo(0, {y})")
                assert _in_view(page, total), (name, y)
                for i in range(actions.count()):
                    assert _in_view(page, actions.nth(i)), (name, y, i)
            page.evaluate(f"window.scrollTo(0, {scroll // 2})")
            screenshot(page, f"cart-floor-30-lines-{name}")
            _axe_clean(page, f"30-line cart, {name}")
        # The last line can still be scrolled clear of the footer.
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        last = page.locator(".cart-line").last.bounding_box()
        footer = page.locator(".cart-footer").bounding_box()
        assert last["y"] + last["height"] <= footer["y"] + 1
    finally:
        ctx.close()


@pytest.mark.browser
def test_browser_capped_units_and_an_already_merged_cart_are_told(browser, cart_store, keyed_db):
    (a,) = stocked_variants(keyed_db, 1)
    top = cart_codec.MAX_QTY
    ctx = browser.new_context(viewport={"width": 1080, "height": 1920}, locale="fr-FR")
    page = ctx.new_page()
    try:
        page.goto(cart_store.url + "/")
        _burst(page, _token((a, top - 1)))
        page.wait_for_url("**/panier")
        phone = _token((a, 5))
        _burst(page, phone)
        page.wait_for_url("**/panier/fusion")
        notice = page.locator("[data-capped]")
        assert notice.is_visible() and "4 articles de votre téléphone" in notice.inner_text()
        screenshot(page, "cart-floor-merge-capped")
        _axe_clean(page, "merge prompt, units over the line limit")
        page.get_by_role("button", name=re.compile("Fusionner les deux paniers")).click()
        page.wait_for_url("**/panier")
        assert _qty(page, a["sku"]) == top
        _burst(page, phone)  # the same phone cart again: not merged a second time
        page.wait_for_url("**/panier?deja=1")
        assert page.locator("[data-already]").is_visible() and _qty(page, a["sku"]) == top
        screenshot(page, "cart-floor-already-here")
        _axe_clean(page, "cart, phone cart already here")
    finally:
        ctx.close()
