"""The counter finds an order by name, number or scanned QR, and a scan on any staff page
is dispatched by what it is (issue 9): a pickup QR opens its hand-over, a product barcode
the product (or, on the returns screen, the return), an order number its order. A forged
or expired QR is refused in plain words, with the staff navigation; garbage is a 4xx.
Over real HTTP against a ``kiosk serve`` process, with orders seeded through the feed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.core import clock, tokens
from app.core import db as dbmod
from app.store.domain import reservations as res
from app.store.domain.stock import self_store_id

from .conftest import staff_login_page
from .counter_client import Counter, _text
from .order_helpers import add_order, install_hub_key, pick_variants, pickup_token

pytestmark = pytest.mark.clock  # tokens and expiry are minted off the business clock

NAV = 'class="counter-nav staff-nav"'


@pytest.fixture
def shop(store_data, server_factory, fake_clock):
    """Orders in several states, a reservation, and a real server on the fake clock."""
    db = dbmod.connect(dbmod.db_path(store_data))
    install_hub_key(db)
    v = pick_variants(db, 6)
    made = {
        "placed": add_order(db, variants=v[:2], qtys=[2, 1], customer="Élodie Martin"),
        "ready": add_order(
            db, variants=v[2:4], status="ready", customer="Zoé Lefèvre", email="zoe@example.org"
        ),
        "collected": add_order(db, variants=v[4:5], status="collected", customer="Inès Roux"),
        "reservation": res.create(db, [(v[5]["sku"], 1)], now=fake_clock.now),
        "variant": v[5],
        "store_id": self_store_id(db),
    }
    db.close()
    return server_factory(store_data), made


def _numbers(html: str) -> list[str]:
    return re.findall(r'class="order-row"[^>]*data-number="([^"]+)"', html)


# --- Search ------------------------------------------------------------------------


def test_search_by_name_number_and_scanned_qr_finds_the_order(shop, store_data, fake_clock):
    server, made = shop
    staff = Counter(server.url, store_data)
    ready = made["ready"]
    hx = {"HX-Request": "true", "HX-Target": "order-list"}
    # The store holds the first name only (issue 14): searched without accents or case.
    for q in ("zoe", "ZOÉ", "Zoé", ready["number"], ready["number"][3:].lower()):
        for headers in ({}, hx):  # the full page and the partial swapped as one types
            r = staff.get("/staff/orders", params={"q": q}, headers=headers)
            assert r.status_code == 200, (q, headers, r.status_code)
            assert _numbers(r.text) == [ready["number"]], (q, headers)
            assert "2 articles" in _text(r), q  # the row's unit count, read without a clash
    # A name that matches several orders lists each with its own unit count.
    r = staff.get("/staff/orders", params={"q": "i"})  # too short: nothing, but no error
    assert r.status_code == 200
    r = staff.get("/staff/orders", params={"q": "Élodie"})
    assert _numbers(r.text) == [made["placed"]["number"]] and "3 articles" in _text(r)
    for surname in ("Martin", "Lefèvre", "zoe@example.org"):  # never held here
        assert _numbers(staff.get("/staff/orders", params={"q": surname}).text) == []
    # A pickup QR scanned into the search box: as one types, the list shows its order…
    token = pickup_token(ready["id"], made["store_id"], now=fake_clock.now.timestamp())
    r = staff.get("/staff/orders", params={"q": token}, headers=hx)
    assert r.status_code == 200 and _numbers(r.text) == [ready["number"]]
    # …and sent as a form (no script), it opens the order's hand-over, checked.
    r = staff.get("/staff/orders", params={"q": token})
    assert r.status_code == 302 and r.headers["Location"].startswith("/staff/scan?code=KQ1.")
    r = staff.http.get(server.url + r.headers["Location"], allow_redirects=False, timeout=10)
    assert r.headers["Location"] == f"/staff/orders/{ready['id']}/handover"
    page = staff.get(r.headers["Location"])
    assert 'class="handover-form' in page.text or "handover-form" in page.text
    # A forged QR in the search box says so instead of listing anything.
    forged = pickup_token(ready["id"], made["store_id"], private=_other_key())
    r = staff.get("/staff/orders", params={"q": forged}, headers=hx)
    assert r.status_code == 200 and _numbers(r.text) == []
    assert "QR code non valide" in _text(r)


def _other_key():
    return tokens.load_private_key(tokens.generate_keypair()[0])


# --- Scan dispatch -----------------------------------------------------------------


def test_a_valid_pickup_qr_opens_that_orders_handover_checked(shop, store_data, fake_clock):
    server, made = shop
    staff = Counter(server.url, store_data)
    ready = made["ready"]
    token = pickup_token(ready["id"], made["store_id"], now=fake_clock.now.timestamp())
    r = staff.get("/staff/scan", params={"code": token})
    assert r.status_code == 302 and r.headers["Location"] == f"/staff/orders/{ready['id']}/handover"
    page = staff.get(r.headers["Location"])
    # Checked by the QR: the hand-over form is offered (staff get none without a check).
    assert page.status_code == 200 and "handover-form" in page.text and NAV in page.text
    # The older address answers the same.
    r = staff.get("/staff/orders/scan", params={"code": token})
    assert r.headers["Location"] == f"/staff/orders/{ready['id']}/handover"


@pytest.mark.parametrize("kind", ["forged", "tampered", "expired", "another store"])
def test_a_bad_pickup_qr_is_refused_in_plain_words(shop, store_data, fake_clock, kind):
    server, made = shop
    staff = Counter(server.url, store_data)
    ready = made["ready"]
    now = fake_clock.now.timestamp()
    good = pickup_token(ready["id"], made["store_id"], now=now)
    code = {
        "forged": pickup_token(ready["id"], made["store_id"], now=now, private=_other_key()),
        "tampered": good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB"),
        # Minted a week and a minute ago for a week: expired one minute ago by the clock.
        "expired": pickup_token(
            ready["id"], made["store_id"], ttl_s=7 * 86400, now=now - 7 * 86400 - 60
        ),
        "another store": pickup_token(ready["id"], "st-elsewhere", now=now),
    }[kind]
    for path in ("/staff/scan", "/staff/orders/scan"):
        r = staff.get(path, params={"code": code})
        assert r.status_code == 400, (kind, path, r.status_code)
        text = _text(r)
        assert "QR code non valide" in text and 'role="alert"' in r.text, kind
        assert NAV in r.text, kind  # the staff are not lost: the navigation is there
    # Nothing was remembered as checked: the hand-over form is not offered to staff.
    assert "handover-form" not in staff.get(f"/staff/orders/{ready['id']}/handover").text
    # In English too.
    staff.post("/lang", {"lang": "en", "next": "/staff/orders"})
    assert "Invalid QR code" in _text(staff.get("/staff/scan", params={"code": code}))


def test_the_expiry_follows_the_clock(shop, store_data, fake_clock):
    """A QR valid now stops being valid when the store's clock passes its expiry."""
    server, made = shop
    ready = made["ready"]
    token = pickup_token(ready["id"], made["store_id"], ttl_s=3600, now=fake_clock.now.timestamp())
    staff = Counter(server.url, store_data)
    assert staff.get("/staff/scan", params={"code": token}).status_code == 302
    server.stop()
    fake_clock.advance(3601)  # the server restarts on the moved clock
    server.env["KIOSK_FAKE_NOW"] = clock.iso(fake_clock.now)
    server.start()
    staff = Counter(server.url, store_data)
    r = staff.get("/staff/scan", params={"code": token})
    assert r.status_code == 400 and "QR code non valide" in _text(r) and "expiré" in _text(r)


def test_a_product_barcode_opens_the_product_or_the_return(shop, store_data):
    server, made = shop
    variant = made["variant"]
    staff = Counter(server.url, store_data)
    r = staff.get("/staff/scan", params={"code": variant["ean"]})
    assert r.status_code == 302 and r.headers["Location"] == f"/staff/products/{variant['sku']}"
    page = staff.get(r.headers["Location"])
    text = _text(page)
    assert page.status_code == 200 and NAV in page.text
    assert variant["name_fr"] in text and variant["ean"] in text and "En stock ici" in text
    # On the returns screen a barcode opens the return: with no order, for a manager…
    manager = Counter(server.url, store_data, role="manager")
    r = manager.get("/staff/returns/scan", params={"code": variant["ean"]})
    assert r.status_code == 302
    assert r.headers["Location"] == f"/staff/returns/no-order?code={variant['sku']}"
    form = manager.get(r.headers["Location"])
    assert form.status_code == 200 and f'value="{variant["sku"]}"' in form.text
    # …and the product (which says a manager is needed) for staff.
    r = staff.get("/staff/returns/scan", params={"code": variant["ean"]})
    assert r.headers["Location"] == f"/staff/products/{variant['sku']}"
    # A barcode with a wrong check digit is a misread, said so.
    misread = variant["ean"][:-1] + str((int(variant["ean"][-1]) + 1) % 10)
    r = staff.get("/staff/scan", params={"code": misread})
    assert r.status_code == 400 and "mal lu" in _text(r) and NAV in r.text


def test_an_order_number_and_a_reservation_open_theirs(shop, store_data):
    server, made = shop
    staff = Counter(server.url, store_data)
    r = staff.get("/staff/scan", params={"code": made["placed"]["number"]})
    assert r.headers["Location"] == f"/staff/orders/{made['placed']['id']}"
    reservation = made["reservation"]
    r = staff.get("/staff/scan", params={"code": reservation["code"]})
    assert r.status_code == 302 and r.headers["Location"].startswith("/staff/reservations/scan")
    r = staff.http.get(server.url + r.headers["Location"], allow_redirects=False, timeout=10)
    assert r.headers["Location"] == f"/staff/reservations/{reservation['id']}"


def test_a_pickup_qr_scanned_on_the_reservations_screen_reaches_the_counter_whole(
    shop, store_data, fake_clock
):
    server, made = shop
    ready = made["ready"]
    token = pickup_token(ready["id"], made["store_id"], now=fake_clock.now.timestamp())
    assert len(token) > 200  # longer than any reservation code: it must not be cut
    staff = Counter(server.url, store_data)
    r = staff.get("/staff/reservations/scan", params={"code": token})
    assert r.status_code == 302
    r = staff.http.get(server.url + r.headers["Location"], allow_redirects=False, timeout=10)
    assert r.headers["Location"] == f"/staff/orders/{ready['id']}/handover"


@pytest.mark.parametrize(
    "code",
    [
        "",
        "hello",
        "CC-99999999",
        "0" * 2000,
        "KQ1.",
        "KQ1.%%%.!!!",
        "<script>x</script>",
        "\u202e\u0000é",
        "https://evil.example/qr",
    ],
)
def test_garbage_is_a_clear_4xx_with_the_navigation(shop, store_data, code):
    server, _ = shop
    staff = Counter(server.url, store_data)
    r = staff.get("/staff/scan", params={"code": code})
    assert 400 <= r.status_code < 500, (code, r.status_code)
    assert NAV in r.text and 'role="alert"' in r.text
    assert "<script>x" not in r.text


# --- In the browser: a scanner burst on any staff page -----------------------------


def scanner(page, code: str) -> None:
    """A handheld scanner: a fast burst of keys ending with Enter."""
    page.keyboard.type(code, delay=5)
    page.keyboard.press("Enter")


def test_a_pickup_qr_burst_on_any_staff_page_opens_its_handover(
    browser, shop, store_data, fake_clock
):
    server, made = shop
    ready = made["ready"]
    token = pickup_token(ready["id"], made["store_id"], now=fake_clock.now.timestamp())
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = context.new_page()
    kiosk_scans: list[str] = []
    page.on(
        "request",
        lambda r: (
            kiosk_scans.append(r.url) if "/scan?" in r.url and "/staff/" not in r.url else None
        ),
    )
    try:
        staff_login_page(page, server.url, store_data)
        # Even on the preparation screen, whose scans go into the bag, a pickup QR is no
        # item: it opens its order's hand-over.
        prepare = f"/staff/orders/{made['placed']['id']}/prepare"
        for path in ("/staff/reservations", "/staff/status", prepare):
            page.goto(server.url + path)
            expect(page.locator("nav.staff-nav")).to_be_visible()
            page.locator("main").click(position={"x": 5, "y": 5})  # focus on the page
            scanner(page, token)
            page.wait_for_url(re.compile(re.escape(f"/staff/orders/{ready['id']}/handover")))
            expect(page.locator("h1")).to_contain_text(ready["number"])
            expect(page.locator(".handover-form")).to_be_visible()
        # A forged QR on the status page: refused in plain words, the navigation stays.
        page.goto(server.url + "/staff/status")
        expect(page.locator("nav.staff-nav")).to_be_visible()
        scanner(page, token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB"))
        expect(page.locator('[role="alert"]')).to_contain_text("QR code non valide")
        expect(page.locator("nav.staff-nav")).to_be_visible()
        assert kiosk_scans == []  # never the shopper kiosk's /scan
    finally:
        context.close()
