"""Consent to personal suggestions and loyalty across channels (issue 14).

Consent: opt-in, unticked by default, given then withdrawn in « Mon compte », withdrawn
at a kiosk offline and applied at the hub at the next sync; journaled. Loyalty: points
on a collected order (a web-shop order and a kiosk order, both handed over in store),
turned into store credit once; head office's rule role-restricted and journaled. Hub
parts run on the backend of the pass (``make test`` runs SQLite then PostgreSQL)."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.core import clock
from app.core import db as dbmod
from app.hub import database as hdb
from app.hub.domain import cards, consent, customers, hq_users, keys, loyalty
from app.hub.domain.orders import create_order
from app.hub.domain.pii import KeyRing
from app.hub.protocol import transactions
from app.store.domain import consent as store_consent
from app.store.domain import customer_cards, outbox
from app.store.sync.push import push_once

from .axe_helpers import assert_axe_clean
from .card_scan import scan_card
from .conftest import screenshot
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, hub_database, hub_db, inprocess_client, store_env

NBSP = "\u00a0"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def hub(hub_data: Path):
    db = hub_db(hub_data)
    keys.ensure_hub_key(db, hub_data)
    yield db
    db.close()


def _customer(db, hub_data: Path, first: str = "Chloé") -> str:
    email = f"{secrets.token_hex(4)}.chloe@example.com"
    row, _ = customers.find_or_create(db, KeyRing.open(hub_data), email, first, "Martin")
    return row["id"]


def _session(db, customer_id: str) -> str:
    """A live web-shop session, as the accounts work stores one (the token's SHA-256)."""
    token = secrets.token_urlsafe(32)
    now = clock.now_iso()
    with hdb.write(db):
        hdb.insert(
            db,
            "customer_sessions",
            {
                "id": hashlib.sha256(token.encode()).hexdigest(),
                "customer_id": customer_id,
                "created_at": now,
                "last_seen_at": now,
            },
        )
    return token


def _hub_app(hub_data: Path):
    from app.hub.app import create_hub_app

    return create_hub_app({"DATA_DIR": str(hub_data), "DATABASE": hub_database(hub_data)})


def _shopper(hub_data: Path, hub, customer_id: str):
    """A browser signed in to the web shop as the customer (French)."""
    client = _hub_app(hub_data).test_client()
    with client.session_transaction() as s:
        s["customer"] = _session(hub, customer_id)
        s["lang"] = "fr"
    return client


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _log(db, customer_id: str) -> list[tuple[int, str, str | None]]:
    return [
        (r["given"], r["channel"], r["store_id"]) for r in consent.history(db, customer_id)[::-1]
    ]


# --- consent -----------------------------------------------------------------------


def test_consent_is_unticked_by_default_and_nothing_personal_is_allowed(hub, hub_data):
    customer = _customer(hub, hub_data)
    assert consent.personal_allowed(hub, customer) is False
    assert consent.personal_allowed(hub, None) is False
    page = _shopper(hub_data, hub, customer).get("/shop/compte")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    box = re.search(r"<input[^>]*id=\"consent-box\"[^>]*>", html)
    assert box and "checked" not in box.group(0)
    assert "Suggestions personnelles" in html
    assert "vos commandes et les produits que vous regardez, en ligne et dans nos magasins" in html
    assert _log(hub, customer) == []


def test_consent_given_then_withdrawn_online_is_journaled(hub, hub_data):
    customer = _customer(hub, hub_data)
    shop = _shopper(hub_data, hub, customer)
    token = _csrf(shop.get("/shop/compte").get_data(as_text=True))
    # The button without the box ticked gives nothing.
    r = shop.post("/shop/compte/suggestions", data={"csrf_token": token, "action": "give"})
    assert r.status_code == 302 and consent.personal_allowed(hub, customer) is False
    r = shop.post(
        "/shop/compte/suggestions",
        data={"csrf_token": token, "action": "give", "consent": "yes"},
    )
    assert r.status_code == 302
    assert consent.personal_allowed(hub, customer) is True
    row = customers.get_customer(hub, customer)
    assert row["consent_personal"] == 1 and row["consent_at"]
    html = shop.get("/shop/compte").get_data(as_text=True)
    assert 'id="consent-withdraw"' in html and 'id="consent-box"' not in html
    assert "Vous avez donné votre accord le" in html
    r = shop.post("/shop/compte/suggestions", data={"csrf_token": token, "action": "withdraw"})
    assert r.status_code == 302
    assert consent.personal_allowed(hub, customer) is False
    assert customers.get_customer(hub, customer)["consent_personal"] == 0
    assert _log(hub, customer) == [(1, "web", None), (0, "web", None)]
    history = shop.get("/shop/compte").get_data(as_text=True)
    assert history.index("Accord retiré le ") < history.index("Accord donné le ")  # newest first
    assert history.count(", en ligne</li>") == 2
    # No CSRF token, no change; signed out, sent to sign in.
    assert shop.post("/shop/compte/suggestions", data={"action": "withdraw"}).status_code == 400
    anon = _hub_app(hub_data).test_client()
    r = anon.post("/shop/compte/suggestions", data={"action": "give", "consent": "yes"})
    assert r.status_code in (302, 400)


def _store_app(data: Path):
    from app.store.app import create_app

    return create_app({"DATA_DIR": str(data)})


def test_consent_withdrawn_at_a_kiosk_offline_reaches_the_hub_at_the_next_sync(
    hub, hub_data, synced_store
):
    customer = _customer(hub, hub_data)
    consent.set_consent(hub, customer, True, "web")
    card_id = cards.issue_card(hub, customer)
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        customer_cards.save_card(store, card_id, customer, "Chloé")
    finally:
        store.close()
    # The kiosk with no hub configured at all: offline.
    kiosk = _store_app(synced_store).test_client()
    with kiosk.session_transaction() as s:
        s["card"] = card_id
    page = kiosk.get("/browse").get_data(as_text=True)
    assert "Bonjour Chloé" in page and 'id="revoke-personal"' in page
    assert "Ne plus me proposer de suggestions" in page
    r = kiosk.post(
        "/carte/suggestions/non",
        data={"csrf_token": _csrf(page)},
        headers={"Referer": "http://localhost/browse"},
    )
    assert r.status_code == 302
    page = kiosk.get("/browse").get_data(as_text=True)
    assert 'id="revoke-personal"' not in page and 'id="personal-off"' in page
    kiosk.post("/carte/suggestions/non", data={"csrf_token": _csrf(page)})  # a second tap
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        queued = [r for r in outbox.pending(store) if r["type"] == "consent.revoked"]
        assert [r["payload"] for r in queued] == [{"card_id": card_id}]  # the card id only
        assert store_consent.personal_allowed(store, card_id) is False
        assert store_consent.revoked_here(store, card_id) is True
        # Still allowed at the hub: nothing was sent yet.
        assert consent.personal_allowed(hub, customer) is True
        client, _transport = inprocess_client(hub_data)
        stats = push_once(store, client)
        assert stats.accepted == 1
        assert outbox.pending(store) == []
    finally:
        store.close()
    assert consent.personal_allowed(hub, customer) is False
    assert _log(hub, customer) == [(1, "web", None), (0, "kiosk", LYON)]
    html = _shopper(hub_data, hub, customer).get("/shop/compte").get_data(as_text=True)
    assert 'id="consent-box"' in html  # unticked again, to give it anew
    assert "Accord retiré le " in html and ", sur une borne en magasin" in html


def test_a_withdrawal_for_a_card_the_hub_does_not_know_is_accepted_with_nothing_applied(
    hub, hub_data
):
    item = {
        "id": str(uuid.uuid4()),
        "type": "consent.revoked",
        "occurred_at": "2026-11-22T14:02:00Z",
        "payload": {"card_id": "crd_unknown"},
    }
    [res] = transactions.apply_batch(hub, LYON, [item], data_dir=hub_data)
    assert res["status"] == "accepted" and res["result"] == {"applied": False}
    bad = {**item, "id": str(uuid.uuid4()), "payload": {"card_id": ""}}
    [res] = transactions.apply_batch(hub, LYON, [bad], data_dir=hub_data)
    assert res["status"] == "rejected" and res["reason"] == "invalid_payload"


# --- loyalty -----------------------------------------------------------------------


def _skus(db, n=2):
    rows = hdb.rows(
        db,
        "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 ORDER BY sku LIMIT ?",
        [LYON, n],
    )
    assert len(rows) == n
    return [r["sku"] for r in rows]


def _tx(tx_type: str, payload: dict) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": tx_type,
        "occurred_at": clock.now_iso(),
        "payload": payload,
    }


def _apply(hub, hub_data, *items):
    results = transactions.apply_batch(hub, LYON, list(items), data_dir=hub_data)
    for res in results:
        assert res["status"] == "accepted", res
    return results


def _collect(hub, hub_data, order_id: str) -> None:
    """Ready then handed over in full at the store (order.ready, order.handover)."""
    lines = hdb.rows(hub, "SELECT line, qty FROM order_lines WHERE order_id = ?", [order_id])
    ready = [{"line": r["line"], "qty_ready": r["qty"]} for r in lines]
    _apply(
        hub,
        hub_data,
        _tx(
            "order.ready",
            {"order_id": order_id, "lines": ready, "shelf_slot": "A-01", "staff": "sf-1"},
        ),
    )
    handed = [{"line": r["line"], "qty": r["qty"]} for r in lines]
    handover = {
        "handover_id": str(uuid.uuid4()),
        "order_id": order_id,
        "lines": handed,
        "collector": "customer",
        "method": "code",
        "staff": "sf-1",
    }
    _apply(hub, hub_data, _tx("order.handover", handover))


def _value(hub, order_id: str) -> int:
    return loyalty.collected_cents(hub, order_id)


def test_points_on_collected_orders_web_and_kiosk_then_store_credit_once(hub, hub_data):
    customer = _customer(hub, hub_data)
    key = keys.current_private_key(hub_data)
    sku_a, sku_b = _skus(hub)
    # A web-shop order, placed while signed in.
    web = create_order(
        hub, LYON, "Chloé Martin", "c@example.com", [{"sku": sku_a, "qty": 2}], private_key=key
    )["order"]["id"]
    customers.claim_order(hub, customer, web)
    # An order the shopper placed at a kiosk (order.request), joined to the account.
    [res] = _apply(
        hub,
        hub_data,
        _tx(
            "order.request",
            {
                "request_id": str(uuid.uuid4()),
                "fulfilment": "pickup",
                "customer_name": "Chloé Martin",
                "customer_email": "c@example.com",
                "lines": [{"sku": sku_b, "qty": 1}],
            },
        ),
    )
    kiosk = res["result"]["order_id"]
    customers.claim_order(hub, customer, kiosk)
    assert loyalty.balance(hub, customer) == 0
    # Ready, nothing collected yet: no points.
    _collect(hub, hub_data, web)
    web_points = _value(hub, web) // 100  # 1 point per euro by default
    assert web_points > 0
    assert loyalty.balance(hub, customer) == web_points
    # Head office doubles the rule: the next order earns twice.
    loyalty.set_rules(hub, {"points_per_euro": 2, "block_points": 10, "block_cents": 500})
    _collect(hub, hub_data, kiosk)
    kiosk_points = _value(hub, kiosk) * 2 // 100
    total = web_points + kiosk_points
    assert loyalty.balance(hub, customer) == total
    # Earned once per order, whatever happens to it again.
    assert loyalty.order_collected(hub, web) == 0
    earned = hdb.rows(
        hub, "SELECT order_id, points FROM loyalty_ledger WHERE kind = 'earned' ORDER BY at"
    )
    assert {r["order_id"]: r["points"] for r in earned} == {web: web_points, kiosk: kiosk_points}

    # « Mon compte » shows the points; one tap turns whole blocks into one credit code.
    shop = _shopper(hub_data, hub, customer)
    html = shop.get("/shop/compte").get_data(as_text=True)
    assert f'id="points">{total} points<' in html
    assert "2 points par euro" in html
    blocks = total // 10
    assert f"Échanger {blocks * 10} points contre {blocks * 5},00{NBSP}€ d’avoir" in html
    r = shop.post("/shop/compte/points/avoir", data={"csrf_token": _csrf(html)})
    assert r.status_code == 302
    [credit] = loyalty.credits(hub, customer)
    assert re.fullmatch(r"AV-[0-9A-Z]{4}-[0-9A-Z]{4}", credit["credit_code"])
    assert credit["credit_cents"] == blocks * 500 and credit["points"] == -blocks * 10
    assert loyalty.balance(hub, customer) == total - blocks * 10
    html = shop.get("/shop/compte").get_data(as_text=True)
    assert credit["credit_code"] in html and 'id="points-convert"' not in html
    # Again: not a whole block left, no second code.
    shop.post("/shop/compte/points/avoir", data={"csrf_token": _csrf(html)})
    assert len(loyalty.credits(hub, customer)) == 1
    with pytest.raises(loyalty.LoyaltyError):
        loyalty.convert(hub, customer)


def test_a_guest_order_earns_nobody_points(hub, hub_data):
    key = keys.current_private_key(hub_data)
    [sku] = _skus(hub, 1)
    order = create_order(
        hub, LYON, "Invité", "guest@example.com", [{"sku": sku, "qty": 1}], private_key=key
    )["order"]["id"]
    _collect(hub, hub_data, order)
    assert hdb.rows(hub, "SELECT * FROM loyalty_ledger") == []


# --- head office's rule ---------------------------------------------------------------


def _hq(hub_data: Path, hub, role: str):
    """A console browser logged in with ``role``."""
    user = hq_users.add_user(
        hub, f"{role}.{secrets.token_hex(3)}@example.com", role.title(), role, "x" * 12
    )
    client = _hub_app(hub_data).test_client()
    with client.session_transaction() as s:
        s["hq_user"] = user["id"]
        s["hq_login_at"] = clock.utcnow().timestamp()
        s["hq_sid"] = hq_users.open_session(hub, user["id"])
    return client


def test_head_office_rule_is_role_restricted_and_journaled(hub, hub_data):
    ops = _hq(hub_data, hub, "operations")
    assert ops.get("/hq/fidelite").status_code == 403
    marketing = _hq(hub_data, hub, "marketing")
    page = marketing.get("/hq/fidelite")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and f"Règle en vigueur{NBSP}: 1 point par euro" in html
    assert 'href="/hq/fidelite" aria-current="page">Fidélité</a>' in html  # in the menu
    assert 'href="/hq/fidelite"' not in ops.get("/hq/").get_data(as_text=True)
    token = _csrf(html)
    form = {"points_per_euro": "3", "block_points": "200", "block_euros": "7,50"}
    r = ops.post("/hq/fidelite", data={**form, "csrf_token": _csrf(html)})
    assert r.status_code in (400, 403)
    assert loyalty.rules(hub)["points_per_euro"] == 1
    r = marketing.post("/hq/fidelite", data={**form, "csrf_token": token})
    assert r.status_code == 302
    assert loyalty.rules(hub) == {"points_per_euro": 3, "block_points": 200, "block_cents": 750}
    [entry] = hdb.rows(hub, "SELECT action, detail FROM hq_audit WHERE action LIKE 'loyalty.%'")
    assert entry["action"] == "loyalty.rules_changed"
    assert '"after": {"block_cents": 750' in entry["detail"] or "750" in entry["detail"]
    for bad in (
        {"points_per_euro": "-1"},
        {"points_per_euro": "2.5"},
        {"block_points": "0"},
        {"block_euros": "abc"},
        {"block_euros": "nan"},
        {"block_euros": "inf"},
        {"block_euros": "1e400"},
        {"block_euros": "0"},
    ):
        r = marketing.post("/hq/fidelite", data={**form, **bad, "csrf_token": token})
        assert r.status_code == 422
        assert 'role="alert"' in r.get_data(as_text=True)
    assert loyalty.rules(hub)["block_cents"] == 750
    assert len(hdb.rows(hub, "SELECT 1 AS x FROM hq_audit WHERE action LIKE 'loyalty.%'")) == 1
    journal = marketing.get("/hq/journal").get_data(as_text=True)
    assert "Règle de fidélité modifiée" in journal
    assert _hub_app(hub_data).test_client().get("/hq/fidelite").status_code == 302


# --- screens -------------------------------------------------------------------------


def test_screens_account_on_a_phone_and_the_kiosk_greeting(
    browser, hub_factory, hub_data, hub, server_factory, synced_store
):
    customer = _customer(hub, hub_data)
    key = keys.current_private_key(hub_data)
    [sku] = _skus(hub, 1)
    order = create_order(
        hub, LYON, "Chloé Martin", "c@example.com", [{"sku": sku, "qty": 3}], private_key=key
    )["order"]["id"]
    customers.claim_order(hub, customer, order)
    loyalty.set_rules(hub, {"points_per_euro": 10, "block_points": 100, "block_cents": 500})
    _collect(hub, hub_data, order)
    hub_server = hub_factory(hub_data)
    app = _hub_app(hub_data)
    cookie = app.session_interface.get_signing_serializer(app).dumps(
        {"customer": _session(hub, customer), "lang": "fr"}
    )
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR")
    phone.add_cookies(
        [{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie, "url": hub_server.url}]
    )
    page = phone.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(hub_server.url + "/shop/compte")
    expect(page.locator("#consent-box")).not_to_be_checked()
    page.locator("#suggestions").scroll_into_view_if_needed()
    screenshot(page, "consent-loyalty-account-390x844")
    assert_axe_clean(page, "Mon compte with consent and points, phone")
    page.locator("#consent-box").check()
    page.locator("#consent-save").click()
    expect(page.locator("#consent-withdraw")).to_be_visible()
    page.locator("#loyalty").scroll_into_view_if_needed()
    screenshot(page, "consent-loyalty-account-given-390x844")
    assert errors == []
    phone.close()
    hub_server.stop()

    token = cards.card_token(hub, hub_data, customer)
    card_id = cards.current_card(hub, customer)
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        customer_cards.save_card(store, card_id, customer, "Chloé")
    finally:
        store.close()
    server = server_factory(synced_store, store_env("http://127.0.0.1:9", hub_data))
    for size in ({"width": 1080, "height": 1920}, {"width": 1920, "height": 1080}):
        kiosk = browser.new_context(viewport=size, locale="fr-FR")
        page = kiosk.new_page()
        page.goto(server.url + "/browse")
        scan_card(page, token)
        expect(page.locator("#revoke-personal")).to_have_text("Ne plus me proposer de suggestions")
        screenshot(page, f"consent-kiosk-greeting-{size['width']}x{size['height']}")
        assert_axe_clean(page, f"kiosk greeting with the withdrawal button, {size}")
        kiosk.close()
    page = browser.new_context(viewport={"width": 1080, "height": 1920}, locale="fr-FR").new_page()
    page.goto(server.url + "/browse")
    scan_card(page, token)
    page.locator("#a11y-toggle").click()  # accessible mode: the button within reach
    expect(page.locator("#revoke-personal")).to_be_visible()
    line = page.evaluate(
        "() => parseFloat(getComputedStyle(document.body).getPropertyValue('--reach-top'))"
        " * innerHeight / 100"
    )
    box = page.locator("#revoke-personal").bounding_box()
    assert box["y"] >= line  # below the line of reach
    heading = page.locator("main h1").first.bounding_box()
    assert heading["y"] >= box["y"] + box["height"]  # and over nothing of the page
    screenshot(page, "consent-kiosk-greeting-1080x1920-accessible")
    assert_axe_clean(page, "kiosk greeting with the withdrawal button, accessible mode")
    page.locator("#revoke-personal").click()
    expect(page.locator("#personal-off")).to_have_text("Plus de suggestions personnelles.")
    screenshot(page, "consent-kiosk-withdrawn-1080x1920")
    page.context.close()
