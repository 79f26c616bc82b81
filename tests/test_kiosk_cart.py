"""The shopper's cart at the kiosk: scanned cart QR codes, availability, reserve, order
the rest, send to a phone; and every wrong or forged code refused kindly."""

from __future__ import annotations

import io
import json
import re
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import qrcode
import zxingcpp
from PIL import Image

from app.core import cart_codec, clock, tokens
from app.core.cart_codec import CartLine
from app.core.protocol import MAX_ADDRESS_LINE, MAX_CITY
from app.store.app import create_app
from app.store.domain import carts, stock
from app.store.domain.carts import CartScanError
from app.store.domain.stock import self_store_id
from app.store.sync import cart_lookup, feed
from app.store.sync.client import HubError

from .cart_helpers import absent_variants, cart_token, stocked_variants
from .conftest import staff_login
from .order_helpers import KID, hub_key, install_hub_key, pickup_token

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

QR = zxingcpp.BarcodeFormat.QRCode


@pytest.fixture
def keyed_db(store_db):
    install_hub_key(store_db)
    return store_db


@pytest.fixture
def web(store_data, keyed_db):
    """The store app with CSRF on (as in production) and a client that sends tokens."""
    app = create_app(
        {"DATA_DIR": str(store_data), "TESTING": True, "SHOP_URL": "http://127.0.0.1:9/"}
    )
    return app


def _csrf(client, path: str = "/panier") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _png(text: str) -> bytes:
    buf = io.BytesIO()
    qrcode.make(text).save(buf, "PNG")
    return buf.getvalue()


# --- Reading a scanned code -----------------------------------------------------------


def test_a_self_contained_cart_reads_offline_with_its_lines(keyed_db):
    here = stocked_variants(keyed_db, 2)
    lines = [CartLine(v["sku"], 1, v["price_cents"]) for v in here]
    scanned = carts.read_scanned(keyed_db, cart_token(lines), lookup=None)
    assert scanned.self_contained and list(scanned.lines) == lines


def test_twenty_lines_stay_self_contained_and_thirty_become_a_reference(keyed_db):
    variants = stocked_variants(keyed_db, 30)
    lines = [CartLine(v["sku"], 1 + i % 3, v["price_cents"]) for i, v in enumerate(variants)]
    token20, token30 = cart_token(lines[:20]), cart_token(lines)
    assert len(token20) <= cart_codec.INLINE_MAX_CHARS
    assert carts.read_scanned(keyed_db, token20).self_contained
    asked = []

    def lookup(cart_id):
        asked.append(cart_id)
        return {
            "id": cart_id,
            "status": "open",
            "lines": [{"sku": x.sku, "qty": x.qty, "price_cents": x.price_cents} for x in lines],
        }

    scanned = carts.read_scanned(keyed_db, token30, lookup=lookup)
    assert not scanned.self_contained and list(scanned.lines) == lines
    assert asked == [scanned.cart_id]
    with pytest.raises(CartScanError) as exc:  # no hub: a reference cannot be read
        carts.read_scanned(keyed_db, token30, lookup=None)
    assert exc.value.code == "offline"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (HubError("x", status=404, code="unknown_cart"), "unknown_cart"),
        (HubError("x", status=410, code="cart_revoked"), "revoked"),
        (HubError("x", status=429, code="rate_limited"), "busy"),
        (HubError("cannot reach the hub"), "offline"),
    ],
)
def test_hub_look_up_failures_become_shopper_messages(keyed_db, error, code):
    variants = stocked_variants(keyed_db, 30)
    token = cart_token([CartLine(v["sku"], 1, v["price_cents"]) for v in variants])

    class Hub:  # the hub client's get_cart failing as the hub would
        def get_cart(self, cart_id):
            raise error

    def lookup(cart_id):
        return cart_lookup.get_cart(Hub(), cart_id)

    with pytest.raises(CartScanError) as exc:
        carts.read_scanned(keyed_db, token, lookup=lookup)
    assert exc.value.code == code


def _tamper(token: str) -> str:
    prefix, body, sig = token.split(".")
    i = len(body) // 2
    swapped = "A" if body[i] != "A" else "B"
    return f"{prefix}.{body[:i]}{swapped}{body[i + 1 :]}.{sig}"


def test_forged_tampered_expired_revoked_and_foreign_codes_are_refused(keyed_db):
    lines = [CartLine(v["sku"], 1, v["price_cents"]) for v in stocked_variants(keyed_db, 2)]
    good = cart_token(lines)
    other_key, _ = tokens.generate_keypair()
    forged = cart_codec.mint_cart_token(
        tokens.load_private_key(other_key), cart_codec.new_cart_id(), lines, kid=KID
    )
    old = cart_token(lines, now=time.time() - cart_codec.CART_TOKEN_TTL_S - 10)
    revoked_id = cart_codec.new_cart_id()
    revoked = cart_token(lines, cart_id=revoked_id)
    change = {
        "seq": 2,
        "kind": "revocation",
        "key": revoked_id,
        "data": {"kind": "cart", "id": revoked_id, "at": clock.now_iso()},
    }
    feed.apply_page(keyed_db, {"changes": [change], "cursor": "2"}, self_store_id(keyed_db))
    private, _ = hub_key()
    pickup = pickup_token("o-ABCDEFGHJKMNPQRS", self_store_id(keyed_db))
    cases = {
        _tamper(good): "forged",
        good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"): "forged",
        forged: "forged",
        old: "expired",
        revoked: "revoked",
        pickup: "pickup",
        "https://example.org/panier/123": "url",
        "KR1.r-abcdefghijklmnop.AAAAAAAAAAAAAAAAAAAAAAAAAA": "reservation",
        "3760000000000": "not_a_token",
        "KQ1." + "A" * 2000: "too_long",
        "KQ1.{}.x": "forged",
    }
    for text, code in cases.items():
        with pytest.raises(CartScanError) as exc:
            carts.read_scanned(keyed_db, text)
        assert exc.value.code == code, text[:40]
    assert carts.read_scanned(keyed_db, good).cart_id  # the good one still reads


def test_cart_view_says_here_short_elsewhere_online_unknown_and_price_changes(keyed_db):
    here = stocked_variants(keyed_db, 1, here_min=3)[0]
    absent = absent_variants(keyed_db, 40)
    others = stock.other_stores(keyed_db, [v["sku"] for v in absent])
    elsewhere = next(v for v in absent if any(s["levels"].get(v["sku"], 0) > 0 for s in others))
    lines = [
        (here["sku"], 2, here["price_cents"] + 500),  # here, and cheaper than in the cart
        (here["sku"] + "-X", 1, 100),  # not in our catalog
        (elsewhere["sku"], 1, elsewhere["price_cents"]),
    ]
    view = carts.cart_view(keyed_db, lines, "fr")
    by_sku = {v.sku: v for v in view["lines"]}
    assert by_sku[here["sku"]].status == "here"
    assert by_sku[here["sku"]].price_change == -500
    assert by_sku[here["sku"] + "-X"].status == "unknown" and not by_sku[here["sku"] + "-X"].known
    assert by_sku[elsewhere["sku"]].status == "elsewhere"
    assert by_sku[elsewhere["sku"]].elsewhere
    assert view["reservable"] == [(here["sku"], 2)]
    assert view["to_order"] == [(elsewhere["sku"], 1)]
    assert view["total"] == here["price_cents"] * 2 + elsewhere["price_cents"]
    short = carts.cart_view(keyed_db, [(here["sku"], here["qty"] + 2, 0)], "fr")
    assert short["lines"][0].status == "short"
    assert short["reservable"] == [(here["sku"], here["qty"])]
    assert short["to_order"] == [(here["sku"], 2)]


# --- Over HTTP --------------------------------------------------------------------------


def test_a_scanned_cart_opens_and_reserving_holds_the_stock_at_once(web, keyed_db):
    here = stocked_variants(keyed_db, 2, here_min=2)
    lines = [CartLine(v["sku"], 2, v["price_cents"]) for v in here]
    client = web.test_client()
    before = stock.levels(keyed_db, [v["sku"] for v in here])
    resp = client.get("/scan", query_string={"code": cart_token(lines)})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/panier")
    html = client.get("/panier").get_data(as_text=True)
    for v in here:
        assert f'data-sku="{v["sku"]}" data-status="here"' in html
    token = _csrf(client)
    resp = client.post("/panier/reserver", data={"csrf_token": token})
    assert resp.status_code == 302
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200
    after = stock.levels(keyed_db, [v["sku"] for v in here])
    assert {s: before[s] - after[s] for s in before} == {v["sku"]: 2 for v in here}
    # The ticket's QR holds the store-signed reservation token.
    reservation_id = resp.headers["Location"].rsplit("/", 1)[1]
    png = client.get(f"/panier/reservation/{reservation_id}/qr.png")
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)), formats=QR)
    assert decoded.text.startswith("KR1." + reservation_id + ".")
    pdf = client.get(f"/panier/reservation/{reservation_id}/ticket.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    # Another shopper's session cannot open it; the reserved lines left the cart.
    assert web.test_client().get(f"/panier/reservation/{reservation_id}").status_code == 404
    assert 'class="cart-empty"' in client.get("/panier").get_data(as_text=True)


def test_reserving_without_csrf_token_is_refused_and_holds_nothing(web, keyed_db):
    here = stocked_variants(keyed_db, 1, here_min=1)
    client = web.test_client()
    client.get("/scan", query_string={"code": cart_token([CartLine(here[0]["sku"], 1, 1)])})
    before = stock.levels(keyed_db, [here[0]["sku"]])
    assert client.post("/panier/reserver").status_code == 400
    assert stock.levels(keyed_db, [here[0]["sku"]]) == before


def test_wrong_codes_show_a_kind_message_and_change_nothing(web, keyed_db):
    client = web.test_client()
    version = stock.stock_version(keyed_db)
    for code, problem, words in [
        ("https://example.org/x", "url", "site web"),
        (pickup_token("o-ABCDEFGHJKMNPQRS", self_store_id(keyed_db)), "pickup", "retrait"),
        ("KQ1.AAAA.BBBB", "forged", "ne peut pas être lu"),
        ("KQ1." + "A" * 3000, "too_long", "trop long"),
    ]:
        resp = client.get("/scan", query_string={"code": code})
        html = resp.get_data(as_text=True)
        assert resp.status_code == 400 and f'data-problem="{problem}"' in html
        assert words in html  # said in the shopper's language (French first)
    assert 'class="cart-empty"' in client.get("/panier").get_data(as_text=True)
    assert stock.stock_version(keyed_db) == version
    # A product barcode still opens its product.
    ean = stocked_variants(keyed_db, 1)[0]["ean"]
    assert "/product/" in client.get("/scan", query_string={"code": ean}).headers["Location"]


def test_a_photo_of_the_cart_qr_is_decoded_on_the_server(web, store_data, keyed_db):
    here = stocked_variants(keyed_db, 1)
    token = cart_token([CartLine(here[0]["sku"], 1, here[0]["price_cents"])])
    client = web.test_client()
    staff_login(client, store_data)  # photos are taken on a staff tablet only
    csrf = _csrf(client, "/panier/scanner")
    resp = client.post(
        "/panier/photo",
        data={"csrf_token": csrf, "photo": (io.BytesIO(_png(token)), "qr.png")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/panier")
    assert f'data-sku="{here[0]["sku"]}"' in client.get("/panier").get_data(as_text=True)
    for junk in (b"not an image at all", _png("https://example.org")[:100]):
        resp = client.post(
            "/panier/photo",
            data={"csrf_token": csrf, "photo": (io.BytesIO(junk), "x.png")},
            content_type="multipart/form-data",
        )
        assert resp.status_code == 400 and 'data-problem="no_qr"' in resp.get_data(as_text=True)


def test_ordering_what_is_not_here_queues_one_order_request(web, keyed_db):
    absent = absent_variants(keyed_db, 1)[0]
    here = stocked_variants(keyed_db, 1)[0]
    client = web.test_client()
    lines = [
        CartLine(absent["sku"], 2, absent["price_cents"]),
        CartLine(here["sku"], 1, here["price_cents"]),
    ]
    client.get("/scan", query_string={"code": cart_token(lines)})
    form_page = client.get("/panier/commander").get_data(as_text=True)
    assert f'data-cents="{2 * absent["price_cents"]}"' in form_page  # the price shown
    csrf = _csrf(client, "/panier/commander")
    bad = client.post(
        "/panier/commander",
        data={"csrf_token": csrf, "fulfilment": "home", "name": "Léa", "email": "lea@example.org"},
    )
    assert bad.status_code == 400 and 'data-error="line1"' in bad.get_data(as_text=True)
    assert keyed_db["outbox"].count_where("type = 'order.request'") == 0
    resp = client.post(
        "/panier/commander",
        data={
            "csrf_token": csrf,
            "fulfilment": "home",
            "name": "Léa Roux",
            "email": "lea@example.org",
            "line1": "3 rue des Lilas",
            "postcode": "69003",
            "city": "Lyon",
        },
    )
    assert resp.status_code == 302
    [row] = keyed_db.execute_returning_dicts("SELECT * FROM outbox WHERE type = 'order.request'")
    payload = json.loads(row["payload"])
    assert payload["fulfilment"] == "home" and payload["request_id"] == row["id"]
    # With what the screen said it costs (the hub honours it if lower than its price).
    shown = 2 * absent["price_cents"]
    assert payload["lines"] == [{"sku": absent["sku"], "qty": 2, "shown_total_cents": shown}]
    assert payload["address"] == {"line1": "3 rue des Lilas", "postcode": "69003", "city": "Lyon"}
    assert 'data-state="queued"' in client.get(resp.headers["Location"]).get_data(as_text=True)
    # The ordered line left the cart; the line available here stayed.
    html = client.get("/panier").get_data(as_text=True)
    assert absent["sku"] not in html and here["sku"] in html


def test_a_city_the_hub_would_refuse_is_refused_at_the_kiosk_form(web, keyed_db):
    absent = absent_variants(keyed_db, 1)[0]
    client = web.test_client()
    client.get("/scan", query_string={"code": cart_token([CartLine(absent["sku"], 1, 0)])})
    page = client.get("/panier/commander").get_data(as_text=True)
    assert f'name="city" autocomplete="address-level2" value="" maxlength="{MAX_CITY}"' in page
    assert (
        f'name="line1" autocomplete="address-line1" value="" maxlength="{MAX_ADDRESS_LINE}"' in page
    )
    form = {
        "csrf_token": _csrf(client, "/panier/commander"),
        "fulfilment": "home",
        "name": "Léa Roux",
        "email": "lea@example.org",
        "line1": "3 rue des Lilas",
        "postcode": "69003",
        "city": "L" * 100,  # within the address line's limit, beyond the hub's for a city
    }
    resp = client.post("/panier/commander", data=form)
    assert resp.status_code == 400 and 'data-error="city"' in resp.get_data(as_text=True)
    assert keyed_db["outbox"].count_where("type = 'order.request'") == 0


def test_send_to_my_phone_encodes_the_cart_at_todays_prices(web, keyed_db):
    here = stocked_variants(keyed_db, 2)
    client = web.test_client()
    page = client.get(f"/product/{here[0]['ref']}", query_string={"sku": here[0]["sku"]})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    for v in here:
        resp = client.post(
            "/panier/ajouter", data={"csrf_token": csrf, "sku": v["sku"], "ref": v["ref"]}
        )
        assert resp.status_code == 302 and "added=1" in resp.headers["Location"]
    png = client.get("/panier/telephone.png")
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)), formats=QR)
    url = urlsplit(decoded.text)
    assert (url.scheme, url.netloc, url.path) == ("http", "127.0.0.1:9", "/shop/panier/importer")
    lines = cart_codec.decode_lines(parse_qs(url.query)["l"][0])
    assert lines == [CartLine(v["sku"], 1, v["price_cents"]) for v in here]


def test_forgetting_the_shopper_clears_the_cart(web, keyed_db):
    here = stocked_variants(keyed_db, 1)
    client = web.test_client()
    client.get("/scan", query_string={"code": cart_token([CartLine(here[0]["sku"], 1, 1)])})
    assert here[0]["sku"] in client.get("/panier").get_data(as_text=True)
    client.post("/session/reset", data={"csrf_token": _csrf(client)})
    assert here[0]["sku"] not in client.get("/panier").get_data(as_text=True)


def test_revocation_changes_from_the_feed_are_kept_and_idempotent(keyed_db):
    cart_id = cart_codec.new_cart_id()
    change = {
        "seq": 5,
        "kind": "revocation",
        "key": cart_id,
        "data": {"kind": "cart", "id": cart_id, "at": clock.now_iso()},
    }
    for cursor in ("5", "6"):
        feed.apply_page(keyed_db, {"changes": [change], "cursor": cursor}, None)
    assert cart_id in carts.revoked_carts(keyed_db)
    junk = {"seq": 7, "kind": "revocation", "key": "x", "data": {"kind": "cart", "id": "nope"}}
    feed.apply_page(keyed_db, {"changes": [junk], "cursor": "7"}, None)
    assert keyed_db["revoked_carts"].count == 1
    # Revocations older than any token's life are dropped: those tokens are expired.
    old_id = cart_codec.new_cart_id()
    old_at = clock.iso(clock.utcnow() - timedelta(seconds=cart_codec.CART_TOKEN_TTL_S + 3600))
    stale = {
        "seq": 8,
        "kind": "revocation",
        "key": old_id,
        "data": {"kind": "cart", "id": old_id, "at": old_at},
    }
    feed.apply_page(keyed_db, {"changes": [stale], "cursor": "8"}, None)
    assert old_id not in carts.revoked_carts(keyed_db)
    assert cart_id in carts.revoked_carts(keyed_db)


def _request_form(client, path: str) -> dict[str, str]:
    html = client.get(path).get_data(as_text=True)
    return {
        "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', html).group(1),
        "request_id": re.search(r'name="request_id" value="([^"]+)"', html).group(1),
    }


def test_a_double_tap_on_reserve_holds_once_and_the_cart_cannot_be_reused(web, keyed_db):
    here = stocked_variants(keyed_db, 1, here_min=3)[0]
    client = web.test_client()
    token = cart_token([CartLine(here["sku"], 2, here["price_cents"])])
    client.get("/scan", query_string={"code": token})
    form = _request_form(client, "/panier")
    before = stock.levels(keyed_db, [here["sku"]])[here["sku"]]
    # Two taps before the first answer: the same form (same cookie, same request id).
    other = web.test_client()
    name = web.config["SESSION_COOKIE_NAME"]
    other.set_cookie(name, client.get_cookie(name).value)
    first = client.post("/panier/reserver", data=form)
    second = other.post("/panier/reserver", data=form)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert keyed_db["reservations"].count == 1
    assert stock.levels(keyed_db, [here["sku"]])[here["sku"]] == before - 2
    # The same cart QR scanned again: used here, it opens nothing.
    again = client.get("/scan", query_string={"code": token})
    assert again.status_code == 400 and 'data-problem="revoked"' in again.get_data(as_text=True)


def test_a_double_tap_on_place_the_order_queues_one_request_with_the_cart(web, keyed_db):
    absent = absent_variants(keyed_db, 1)[0]
    client = web.test_client()
    cart_id = cart_codec.new_cart_id()
    token = cart_token([CartLine(absent["sku"], 1, absent["price_cents"])], cart_id=cart_id)
    client.get("/scan", query_string={"code": token})
    form = {
        **_request_form(client, "/panier/commander"),
        "fulfilment": "pickup",
        "name": "Léa Roux",
        "email": "lea@example.org",
    }
    other = web.test_client()
    name = web.config["SESSION_COOKIE_NAME"]
    other.set_cookie(name, client.get_cookie(name).value)
    assert client.post("/panier/commander", data=form).status_code == 302
    assert other.post("/panier/commander", data=form).status_code == 302
    [row] = keyed_db.execute_returning_dicts("SELECT * FROM outbox WHERE type = 'order.request'")
    assert row["id"] == form["request_id"]
    assert json.loads(row["payload"])["cart_id"] == cart_id
    assert cart_id in carts.revoked_carts(keyed_db)
