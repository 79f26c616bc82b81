"""« Ma carte » (issue 14): a hub-signed, expiring card QR code with no personal data,
shown in the web shop to a signed-in customer, verified offline by a store, and
recognising the shopper at the kiosk until the idle reset."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import secrets
from pathlib import Path

import pytest
import requests
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from app.core import clock, tokens
from app.core import db as dbmod
from app.hub import database as hdb
from app.hub.domain import cards, customers, keys
from app.hub.domain.pii import KeyRing
from app.store.domain import customer_cards
from app.store.domain.hub_keys import apply_hub_key_changes

from .axe_helpers import assert_axe_clean
from .card_scan import post_card, scan_card
from .conftest import free_port, screenshot, staff_login
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import hub_database, hub_db, store_env

NBSP = "\u00a0"
EMAIL = "chloe.martin@example.com"
FIRST, LAST = "Chloé", "Martin"
QR = zxingcpp.BarcodeFormat.QRCode
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _customer(db, hub_data: Path) -> str:
    """A customer made as the accounts work makes one: e-mail and names sealed."""
    email = f"{secrets.token_hex(4)}.{EMAIL}"
    row, _created = customers.find_or_create(db, KeyRing.open(hub_data), email, FIRST, LAST)
    return row["id"]


def _signed_in_token(db, customer_id: str) -> str:
    """A live web-shop session for the customer, as the accounts work opens one: the
    browser keeps the token, ``customer_sessions`` its SHA-256."""
    token = secrets.token_urlsafe(32)
    now = clock.now_iso()
    with hdb.write(db):
        hdb.insert(
            db,
            "customer_sessions",
            {
                "id": _session_id(token),
                "customer_id": customer_id,
                "created_at": now,
                "last_seen_at": now,
            },
        )
    return token


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _payload(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.b32decode(body + "=" * (-len(body) % 8)))


def _reencode(token: str, payload: dict) -> str:
    """The token with its payload replaced and the old signature kept (a forgery)."""
    prefix, _body, signature = token.split(".")
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return f"{prefix}.{base64.b32encode(raw).decode().rstrip('=')}.{signature}"


def _give_store_hub_keys(hub, store_db) -> None:
    """The hub's public keys, as the change feed hands them to a store."""
    rows = hdb.rows(hub, "SELECT kid, public_key FROM hub_keys")
    changes = [{"data": {"kid": r["kid"], "public_key": r["public_key"]}} for r in rows]
    apply_hub_key_changes(store_db, changes, None)


@pytest.fixture
def hub(hub_data: Path):
    db = hub_db(hub_data)
    yield db
    db.close()


# --- the token: minted at the hub, verified offline at a store ---------------------


def test_card_token_round_trip_carries_only_a_random_card_id(hub, hub_data, store_db):
    customer = _customer(hub, hub_data)
    token = cards.card_token(hub, hub_data, customer)
    _give_store_hub_keys(hub, store_db)

    check = customer_cards.verify_card(store_db, token)
    assert check.ok and check.reason is None
    assert check.card_id == cards.current_card(hub, customer)
    assert cards.customer_for_card(hub, check.card_id) == customer
    payload = _payload(token)
    assert set(payload) == {"k", "jti", "iat", "exp", "kid", "c"}
    assert payload["k"] == "card" and payload["exp"] - payload["iat"] == 600
    assert payload["kid"] == keys.kid_for(keys.current_private_key(hub_data))
    assert customer not in token and customer not in json.dumps(payload)
    # The same card id in every token until the card is renewed; fresh tokens each time.
    again = cards.card_token(hub, hub_data, customer)
    assert again != token and _payload(again)["c"] == payload["c"]


def test_expired_card_refused_by_the_frozen_clock(hub, hub_data, store_db, fake_clock):
    customer = _customer(hub, hub_data)
    token = cards.card_token(hub, hub_data, customer)
    _give_store_hub_keys(hub, store_db)
    fake_clock.advance(599)
    assert customer_cards.verify_card(store_db, token).ok
    fake_clock.advance(1)
    check = customer_cards.verify_card(store_db, token)
    assert (check.card_id, check.reason) == (None, "expired")


def test_tampered_wrong_kind_and_unknown_key_refused_with_a_reason(hub, hub_data, store_db):
    customer = _customer(hub, hub_data)
    token = cards.card_token(hub, hub_data, customer)
    _give_store_hub_keys(hub, store_db)
    private_key, kid = keys.ensure_hub_key(hub, hub_data)

    forged = _reencode(token, {**_payload(token), "c": "someone-elses-card-id"})
    assert customer_cards.verify_card(store_db, forged).reason == "bad_signature"
    assert customer_cards.verify_card(store_db, token[:-4] + "AAAA").reason in (
        "bad_signature",
        "malformed",
    )
    cart = tokens.mint(private_key, "cart", {"c": "x"}, 600, kid=kid)
    assert customer_cards.verify_card(store_db, cart).reason == "wrong_kind"
    stranger, _ = tokens.generate_keypair()
    other = tokens.load_private_key(stranger)
    unknown = tokens.mint(other, "card", {"c": "x"}, 600, kid="hk-nobody")
    assert customer_cards.verify_card(store_db, unknown).reason == "unknown_key"
    # Signed by another key under the hub's own key id: the signature gives it away.
    posing = tokens.mint(other, "card", {"c": "x"}, 600, kid=kid)
    assert customer_cards.verify_card(store_db, posing).reason == "bad_signature"
    no_card = tokens.mint(private_key, "card", {"x": "1"}, 600, kid=kid)
    assert customer_cards.verify_card(store_db, no_card).reason == "bad_card"
    for junk in ("", "KQ1.", "KQ1.!!.??", "x" * 5000):
        assert not customer_cards.verify_card(store_db, junk).ok


def test_renewing_a_card_revokes_the_old_id(hub, hub_data):
    customer = _customer(hub, hub_data)
    old = cards.issue_card(hub, customer)
    assert cards.issue_card(hub, customer) == old  # one live card at a time
    new = cards.rotate_card(hub, customer)
    assert new != old and cards.current_card(hub, customer) == new
    assert cards.customer_for_card(hub, old) is None
    assert cards.customer_for_card(hub, new) == customer
    assert cards.revoke_cards(hub, customer) == 1 and cards.current_card(hub, customer) is None


# --- the web shop page --------------------------------------------------------------


@pytest.fixture
def hub_app(hub_data: Path):
    from app.hub.app import create_hub_app

    return create_hub_app(
        {"DATA_DIR": str(hub_data), "DATABASE": hub_database(hub_data), "TESTING": True}
    )


def test_card_page_needs_sign_in(hub_app, hub, hub_data):
    http = hub_app.test_client()
    page = http.get("/shop/compte/carte")
    assert page.status_code == 302
    assert page.headers["Location"].endswith("/shop/compte/connexion")
    # htmx's poll, signed out meanwhile: the whole page goes to the sign-in.
    poll = http.get("/shop/compte/carte", headers={"HX-Request": "true"})
    assert poll.headers["HX-Redirect"].endswith("/shop/compte/connexion")
    assert b"card-qr" not in page.data + poll.data
    assert http.get("/shop/compte/carte/qr.png").status_code == 401
    # A made-up session token, or a signed-out one, opens nothing either.
    with http.session_transaction() as s:
        s["customer"] = secrets.token_urlsafe(32)
    assert http.get("/shop/compte/carte/qr.png").status_code == 401
    token = _signed_in_token(hub, _customer(hub, hub_data))
    with hdb.write(hub):  # signed out
        hdb.execute(
            hub,
            "UPDATE customer_sessions SET revoked_at = ? WHERE id = ?",
            [clock.now_iso(), _session_id(token)],
        )
    with http.session_transaction() as s:
        s["customer"] = token
    assert http.get("/shop/compte/carte/qr.png").status_code == 401
    assert http.get("/shop/compte/carte").status_code == 302


def test_card_page_shows_a_rotating_qr_without_personal_data(hub_app, hub, hub_data, store_db):
    customer = _customer(hub, hub_data)
    http = hub_app.test_client()
    with http.session_transaction() as s:
        s["customer"] = _signed_in_token(hub, customer)

    page = http.get("/shop/compte/carte", headers={"Accept-Language": "fr"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'hx-trigger="every 60s"' in html and 'id="card-qr"' in html
    assert "style=" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html)
    # htmx's poll gets the partial alone, with a new image address.
    partial = http.get("/shop/compte/carte", headers={"HX-Request": "true"})
    text = partial.get_data(as_text=True)
    assert text.lstrip().startswith('<div id="card-qr"') and "<html" not in text
    src = re.search(r'<img src="([^"]+)"', text).group(1)
    assert src.startswith("/shop/compte/carte/qr.png?v=") and src not in html

    png = http.get("/shop/compte/carte/qr.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.headers["Cache-Control"] == "no-store"
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)), formats=QR)
    token = decoded.text
    _give_store_hub_keys(hub, store_db)
    assert customer_cards.verify_card(store_db, token).card_id == cards.current_card(hub, customer)
    payload = json.dumps(_payload(token), ensure_ascii=False)
    for personal in (EMAIL, FIRST, LAST, "Chlo", "example", customer, "@"):
        assert personal not in token and personal not in payload
    [again] = zxingcpp.read_barcodes(
        Image.open(io.BytesIO(http.get("/shop/compte/carte/qr.png").data)), formats=QR
    )
    assert again.text != token  # a new code each time it is drawn

    # Renewing the card: a new card id, the old one names nobody.
    old = cards.current_card(hub, customer)
    csrf = _CSRF.search(html).group(1)
    done = http.post("/shop/compte/carte/nouvelle", data={"csrf_token": csrf})
    assert done.status_code == 303
    assert cards.current_card(hub, customer) not in (None, old)
    assert cards.customer_for_card(hub, old) is None
    assert http.post("/shop/compte/carte/nouvelle").status_code == 400  # no CSRF token


# --- the kiosk: a real store server, the hub stopped ---------------------------------


def _store_with_card(synced_store: Path, hub, hub_data, first_name: str | None) -> str:
    """A card token for a new customer; the store knows the card's first name if given."""
    customer = _customer(hub, hub_data)
    token = cards.card_token(hub, hub_data, customer)
    if first_name:
        db = dbmod.connect(dbmod.db_path(synced_store))
        try:
            customer_cards.save_card(db, _payload(token)["c"], customer, first_name)
        finally:
            db.close()
    return token


def _kiosk_session(data: Path, http: requests.Session) -> dict:
    """What the kiosk's session cookie holds, read with the store's own key."""
    from app.store.app import create_app

    app = create_app({"DATA_DIR": str(data)})
    cookie = http.cookies.get(app.config["SESSION_COOKIE_NAME"])
    data = app.session_interface.get_signing_serializer(app).loads(cookie) if cookie else {}
    return dict(data)


def _dead_hub_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize("first_name", [None, FIRST])
def test_kiosk_recognises_a_card_offline_and_forgets_it_at_the_idle_reset(
    server_factory, synced_store, hub, hub_data, first_name
):
    token = _store_with_card(synced_store, hub, hub_data, first_name)
    card_id = _payload(token)["c"]
    # The store got the hub's key through its first sync; the hub is not running now.
    server = server_factory(synced_store, store_env(_dead_hub_url(), hub_data))
    http = requests.Session()
    home = http.get(server.url + "/browse", timeout=10)
    assert "reconnu" not in home.text

    scanned = post_card(http, server.url, token)  # by POST: never in a URL
    assert scanned.status_code == 200 and scanned.url == server.url + "/browse"
    greeting = f"Bonjour {first_name}{NBSP}!" if first_name else f"Bonjour{NBSP}!"
    assert f"{greeting} Vous êtes reconnu(e)" in scanned.text
    assert card_id not in scanned.text and token not in scanned.text
    # Recognised on the next pages too, until the idle reset.
    assert "Vous êtes reconnu(e)" in http.get(server.url + "/panier", timeout=10).text

    held = _kiosk_session(synced_store, http)
    assert held["card"] == card_id  # the card id only: no name kept in the cookie
    assert FIRST not in json.dumps(held, ensure_ascii=False) and token not in json.dumps(held)

    csrf = _CSRF.search(scanned.text).group(1)
    http.post(server.url + "/session/reset", data={"csrf_token": csrf}, timeout=10)
    after = http.get(server.url + "/browse", timeout=10)
    assert after.status_code == 200 and "reconnu" not in after.text
    assert "card" not in _kiosk_session(synced_store, http)
    log = server.log.read_text(errors="replace")
    assert card_id not in log and (first_name or "Chloé") not in log


def test_kiosk_refuses_an_expired_card_kindly(server_factory, synced_store, hub, hub_data):
    old = cards.card_token(hub, hub_data, _customer(hub, hub_data), now=clock.now_s() - 601)
    server = server_factory(synced_store, store_env(_dead_hub_url(), hub_data))
    http = requests.Session()
    page = post_card(http, server.url, old)
    assert page.status_code == 400 and 'data-problem="expired"' in page.text
    assert "a expiré" in page.text and "reconnu" not in page.text
    assert "reconnu" not in http.get(server.url + "/browse", timeout=10).text


def test_a_card_scanned_at_the_counter_says_what_it_is(hub, hub_data, store_data):
    from app.store.app import create_app

    app = create_app({"DATA_DIR": str(store_data), "TESTING": True})
    http = app.test_client()
    staff_login(http, store_data)
    token = cards.card_token(hub, hub_data, _customer(hub, hub_data))
    csrf = _CSRF.search(http.get("/staff/scan?code=x").get_data(as_text=True)).group(1)
    page = http.post("/staff/scan", data={"csrf_token": csrf, "code": token})
    text = page.get_data(as_text=True)
    assert page.status_code == 400 and "carte client" in text and "Ma carte" in text
    assert _payload(token)["c"] not in text


# --- screenshots ---------------------------------------------------------------------


def test_screenshots_card_page_and_recognised_kiosk(
    browser, hub_factory, hub_data, hub, server_factory, synced_store
):
    hub_server = hub_factory(hub_data)
    customer = _customer(hub, hub_data)
    from app.hub.app import create_hub_app

    app = create_hub_app({"DATA_DIR": str(hub_data), "DATABASE": hub_database(hub_data)})
    cookie = app.session_interface.get_signing_serializer(app).dumps(
        {"customer": _signed_in_token(hub, customer), "lang": "fr"}
    )
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR")
    phone.add_cookies(
        [{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie, "url": hub_server.url}]
    )
    page = phone.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(hub_server.url + "/shop/compte/carte")
    assert page.locator("#card-qr img").evaluate("i => i.complete && i.naturalWidth > 0")
    screenshot(page, "customer-card-phone-390x844")
    assert_axe_clean(page, "Ma carte, phone")
    assert errors == []
    phone.close()

    token = _store_with_card(synced_store, hub, hub_data, FIRST)
    hub_server.stop()
    server = server_factory(synced_store, store_env(_dead_hub_url(), hub_data))
    kiosk = browser.new_context(viewport={"width": 1080, "height": 1920}, locale="fr-FR")
    page = kiosk.new_page()
    page.goto(server.url + "/browse")
    scan_card(page, token)
    greeting = page.locator(".recognised").inner_text()
    assert f"Bonjour {FIRST}{NBSP}! Vous êtes reconnu(e)" in greeting
    screenshot(page, "customer-card-kiosk-1080x1920")
    assert_axe_clean(page, "kiosk with a recognised shopper, portrait")
    # Accessible mode: the greeting sits in the band out of reach, the page still in order.
    page.locator("#a11y-toggle").click()
    expect(page.locator(".recognised")).to_be_visible()
    screenshot(page, "customer-card-kiosk-1080x1920-accessible")
    assert_axe_clean(page, "kiosk with a recognised shopper, accessible mode")
    page.locator("#a11y-toggle").click()
    page.set_viewport_size({"width": 1920, "height": 1080})
    expect(page.locator(".recognised")).to_be_visible()
    screenshot(page, "customer-card-kiosk-1920x1080")
    expired = cards.card_token(hub, hub_data, _customer(hub, hub_data), now=clock.now_s() - 700)
    scan_card(page, expired)
    expect(page.locator(".card-problem [role=alert]")).to_contain_text("a expiré")
    expect(page.locator(".recognised")).to_have_count(0)  # a refused scan forgets Chloé
    screenshot(page, "customer-card-kiosk-expired-1920x1080")
    assert_axe_clean(page, "kiosk, an expired card")
    kiosk.close()
