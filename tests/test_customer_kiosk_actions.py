"""A recognised shopper's kiosk actions attached to their account (issue 14, part A).

A reservation, an order for what is not here and a cart sent to the phone, done at a
kiosk offline by a shopper who scanned « Ma carte », wait in the store's outbox with the
card id alone; at the next sync the hub finds the customer and « Mon compte » shows them
with the rest of the account (orders by channel, returns, store credit). A real hub and
a real store server; hub parts run on the backend of the pass (``make test`` runs
SQLite then PostgreSQL).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests
from playwright.sync_api import expect

from app.core import clock
from app.core import db as dbmod
from app.hub import database as hdb
from app.hub.domain import (
    account_history,
    cards,
    customer_export,
    customers,
    erasure,
    keys,
    loyalty,
    retention,
)
from app.hub.domain.orders import create_order
from app.hub.domain.pii import KeyRing
from app.hub.protocol import transactions
from app.store.domain import outbox, reservations
from app.store.sync import client
from app.store.sync.pull import pull_once
from app.store.sync.push import push_once

from .axe_helpers import assert_axe_clean
from .card_scan import scan_card
from .cart_helpers import absent_variants, stocked_variants
from .conftest import free_port, screenshot
from .hub_fixtures import store_secrets
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, hub_database, hub_db, store_env

NBSP = "\u00a0"
FIRST = "Chloé"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_REQUEST = re.compile(r'name="request_id" value="([^"]+)"')
KIOSK_TYPES = ("reservation.created", "reservation.closed", "order.request", "cart.sent")


@pytest.fixture
def hub(hub_data: Path):
    db = hub_db(hub_data)
    keys.ensure_hub_key(db, hub_data)
    yield db
    db.close()


def _customer(db, hub_data: Path) -> str:
    email = f"{secrets.token_hex(4)}.chloe@example.com"
    row, _ = customers.find_or_create(db, KeyRing.open(hub_data), email, FIRST, "Martin")
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


def _shopper(hub_data: Path, hub, customer_id: str, lang: str = "fr"):
    """A browser signed in to the web shop as the customer."""
    web = _hub_app(hub_data).test_client()
    with web.session_transaction() as s:
        s["customer"] = _session(hub, customer_id)
        s["lang"] = lang
    return web


def _form(http: requests.Session, url: str) -> dict[str, str]:
    html = http.get(url, timeout=10).text
    out = {"csrf_token": _CSRF.search(html).group(1)}
    found = _REQUEST.search(html)
    if found:
        out["request_id"] = found.group(1)
    return out


def _queued(store: Path) -> list[dict]:
    db = dbmod.connect(dbmod.db_path(store))
    try:
        return [r for r in outbox.pending(db) if r["type"] in KIOSK_TYPES]
    finally:
        db.close()


def _tx(tx_type: str, payload: dict) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": tx_type,
        "occurred_at": clock.now_iso(),
        "payload": payload,
    }


def _apply(hub, hub_data: Path, *items) -> list[dict]:
    return transactions.apply_batch(hub, LYON, list(items), data_dir=hub_data)


def _skus(db, n: int = 2) -> list[str]:
    rows = hdb.rows(
        db,
        "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 ORDER BY sku LIMIT ?",
        [LYON, n],
    )
    assert len(rows) == n
    return [r["sku"] for r in rows]


def _reservation(reservation_id: str, card_id: str, sku: str) -> dict:
    now = clock.utcnow()
    return {
        "reservation_id": reservation_id,
        "code": "R-7KQ2",
        "card_id": card_id,
        "lines": [{"sku": sku, "qty": 2}],
        "created_at": clock.iso(now),
        "expires_at": clock.iso(now + timedelta(hours=2)),
    }


# --- at the kiosk, offline; then the sync; then « Mon compte » ---------------------


def test_kiosk_actions_offline_reach_the_account_at_the_next_sync(
    hub, hub_data, hub_server, synced_store, server_factory
):
    customer = _customer(hub, hub_data)
    token = cards.card_token(hub, hub_data, customer)
    card_id = cards.current_card(hub, customer)
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        here = stocked_variants(store, 1, here_min=3)[0]
        absent = absent_variants(store, 1)[0]
        store_name = store.execute("SELECT name FROM stores WHERE is_self = 1").fetchone()[0]
    finally:
        store.close()

    # The store cannot reach the hub: everything below is done offline.
    dead_hub = f"http://127.0.0.1:{free_port()}"
    server = server_factory(synced_store, store_env(dead_hub, hub_data))
    kiosk = requests.Session()
    recognised = kiosk.post(  # the scanner's burst, posted by the kiosk's script
        server.url + "/scan",
        data={**_form(kiosk, server.url + "/browse"), "code": token},
        headers={"Referer": server.url + "/browse"},
        timeout=10,
    )
    assert recognised.status_code == 200 and 'class="recognised' in recognised.text
    for sku in (here["sku"], absent["sku"]):
        added = kiosk.post(
            server.url + "/panier/ajouter",
            data={**_form(kiosk, server.url + "/panier"), "sku": sku},
            timeout=10,
        )
        assert added.status_code == 200
    # Send to my phone: the QR code's address carries the lines only; the account gets it.
    phone = kiosk.get(server.url + "/panier/telephone", timeout=10)
    assert phone.status_code == 200 and 'id="cart-in-account"' in phone.text
    assert "Vous le retrouverez aussi dans Mon compte." in phone.text
    kiosk.get(server.url + "/panier/telephone", timeout=10)  # reloaded: queued once
    # Reserve what is here, order what is not (collected at this store).
    reserved = kiosk.post(
        server.url + "/panier/reserver", data=_form(kiosk, server.url + "/panier"), timeout=10
    )
    assert reserved.status_code == 200 and "/panier/reservation/" in reserved.url
    reservation_id = reserved.url.rsplit("/", 1)[1]
    order_form = _form(kiosk, server.url + "/panier/commander")
    ordered = kiosk.post(
        server.url + "/panier/commander",
        data={
            **order_form,
            "fulfilment": "pickup",
            "name": "Chloé Martin",
            "email": "chloe.kiosk@example.org",
        },
        timeout=10,
    )
    assert ordered.status_code == 200 and 'data-state="queued"' in ordered.text

    # Queued with the card id and nothing else of the person.
    queued = {r["type"]: r for r in _queued(synced_store)}
    assert sorted(queued) == ["cart.sent", "order.request", "reservation.created"]
    assert [r["type"] for r in _queued(synced_store)].count("cart.sent") == 1
    created = queued["reservation.created"]["payload"]
    assert set(created) == {
        "reservation_id",
        "code",
        "card_id",
        "lines",
        "created_at",
        "expires_at",
    }
    assert created["card_id"] == card_id and created["reservation_id"] == reservation_id
    assert created["lines"] == [{"sku": here["sku"], "qty": 1}]
    sent = queued["cart.sent"]["payload"]
    assert set(sent) == {"sent_id", "card_id", "lines", "sent_at"} and sent["card_id"] == card_id
    assert sorted(line["sku"] for line in sent["lines"]) == sorted([here["sku"], absent["sku"]])
    request = queued["order.request"]["payload"]
    assert request["card_id"] == card_id
    # The kiosk adds nothing it holds about the person: only what the shopper typed.
    for payload in (created, sent, request):
        text = json.dumps(payload, ensure_ascii=False)
        assert customer not in text and FIRST + '"' not in text
    assert card_id not in server.log.read_text(errors="replace")
    assert card_id not in phone.text  # nor in the QR code's address
    # The reservation handed over at the till, still offline: how it ended is queued too.
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        reservations.collect(store, reservation_id, staff_id="s-test", device="till")
        assert store.execute(
            "SELECT for_account FROM reservations WHERE id = ?", [reservation_id]
        ).fetchone() == (1,)
    finally:
        store.close()
    closed = [r for r in _queued(synced_store) if r["type"] == "reservation.closed"]
    assert [r["payload"]["status"] for r in closed] == ["collected"]
    assert "card_id" not in closed[0]["payload"]

    # Nothing at the hub yet.
    assert account_history.reservations_of(hub, customer) == []
    assert customers.orders_of(hub, customer) == []

    # The link is back: the next sync sends it all, and the account shows it.
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        lyon = client.HubClient(hub_server.url, LYON, store_secrets(hub_data)[LYON])
        push_once(store, lyon)
        assert [r["type"] for r in outbox.pending(store) if r["type"] in KIOSK_TYPES] == []
        # Acknowledged: the store forgets the card id it queued.
        rows = store.execute("SELECT type, payload FROM outbox").fetchall()
        assert all(card_id not in payload for _type, payload in rows)
        assert {t for t, _p in rows} >= {"reservation.created", "order.request", "cart.sent"}
        # The feed back: the store's copy of the order names the account, and the store
        # holds the card, so the counter finds this order from the card.
        pull_once(store, lyon, own_store_id=LYON)
        number = customers.orders_of(hub, customer)[0]["number"]
        assert store.execute(
            "SELECT customer_id FROM orders WHERE number = ?", [number]
        ).fetchall() == [(customer,)]
        assert store.execute(
            "SELECT customer_id FROM customer_cards WHERE card_id = ?", [card_id]
        ).fetchall() == [(customer,)]
    finally:
        store.close()

    [held] = account_history.reservations_of(hub, customer)
    assert (held["id"], held["status"], held["store_id"]) == (reservation_id, "collected", LYON)
    [order] = customers.orders_of(hub, customer)
    assert account_history.kiosk_orders(hub, [order["id"]]) == {order["id"]: store_name}
    [cart] = account_history.sent_carts_of(hub, customer)
    assert cart["units"] == 2

    page = _shopper(hub_data, hub, customer).get("/shop/compte")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert order["number"] in html and f"En magasin, {store_name}" in html
    assert "Mes réservations en magasin" in html and held["code"] in html
    assert "Retirée" in html and "1 article" in html
    assert "Panier envoyé depuis le magasin" in html and "2 articles, " in html
    data = _shopper(hub_data, hub, customer).get("/shop/compte/donnees").get_data(as_text=True)
    assert "1 réservation faite sur une borne." in data
    assert "1 panier envoyé depuis une borne." in data
    link = re.search(r'href="(/shop/panier/importer\?l=[^"]+)"', html).group(1)
    assert card_id not in link and customer not in link
    opened = _shopper(hub_data, hub, customer).get(unquote(link).replace("&amp;", "&"))
    assert opened.status_code == 200
    opened_html = opened.get_data(as_text=True)
    assert here["sku"] in opened_html or here["name_fr"] in opened_html


# --- at the hub: mapping and validation --------------------------------------------


def test_a_renewed_card_still_maps_an_erased_customers_card_maps_to_nobody(hub, hub_data):
    customer = _customer(hub, hub_data)
    old_card = cards.issue_card(hub, customer)
    cards.rotate_card(hub, customer)  # renewed after the shopper scanned the old one
    sku = _skus(hub, 1)[0]
    [res] = _apply(hub, hub_data, _tx("reservation.created", _reservation("r-one", old_card, sku)))
    assert res["status"] == "accepted" and res["result"] == {"attached": True, "new": True}
    # The same reservation sent again (under another transaction id): kept once.
    [again] = _apply(
        hub, hub_data, _tx("reservation.created", _reservation("r-one", old_card, sku))
    )
    assert again["status"] == "accepted" and again["result"]["new"] is False
    assert [r["id"] for r in account_history.reservations_of(hub, customer)] == ["r-one"]
    # A store clock ahead does not make the account's data younger than the hub's now.
    ahead = _reservation("r-ahead", old_card, sku)
    ahead["created_at"] = clock.iso(clock.utcnow() + timedelta(days=400))
    [res] = _apply(hub, hub_data, _tx("reservation.created", ahead))
    assert res["status"] == "accepted"
    contact = customers.get_customer(hub, customer)["last_contact_at"]
    assert clock.parse_iso(contact) <= clock.utcnow()
    [ended] = _apply(
        hub,
        hub_data,
        _tx(
            "reservation.closed",
            {"reservation_id": "r-one", "status": "expired", "closed_at": clock.now_iso()},
        ),
    )
    assert ended["result"] == {"applied": True}
    statuses = {r["id"]: r["status"] for r in account_history.reservations_of(hub, customer)}
    assert statuses == {"r-one": "expired", "r-ahead": "held"}
    # Not known here (made before this version): accepted, nothing applied, never parked.
    [unknown] = _apply(
        hub,
        hub_data,
        _tx(
            "reservation.closed",
            {"reservation_id": "r-older", "status": "collected", "closed_at": clock.now_iso()},
        ),
    )
    assert unknown["status"] == "accepted" and unknown["result"] == {"applied": False}

    # Erased before the store's queue came: the action is kept with nobody.
    erased = _customer(hub, hub_data)
    erased_card = cards.issue_card(hub, erased)
    erasure.erase_customer(hub, KeyRing.open(hub_data), erased)
    late = _tx("reservation.created", _reservation("r-late", erased_card, sku))
    cart = _tx(
        "cart.sent",
        {
            "sent_id": str(uuid.uuid4()),
            "card_id": erased_card,
            "lines": [{"sku": sku, "qty": 1, "price_cents": 1990}],
            "sent_at": clock.now_iso(),
        },
    )
    results = _apply(hub, hub_data, late, cart)
    assert [r["result"]["attached"] for r in results] == [False, False]
    assert hdb.scalar(hub, "SELECT customer_id FROM kiosk_reservations WHERE id = 'r-late'") is None
    assert hdb.scalar(hub, "SELECT count(*) FROM sent_carts WHERE customer_id IS NULL") == 1


@pytest.mark.parametrize(
    ("tx_type", "payload", "field"),
    [
        ("reservation.created", {"reservation_id": None}, "payload.reservation_id"),
        ("reservation.created", {"card_id": ""}, "payload.card_id"),
        ("reservation.created", {"lines": []}, "payload.lines"),
        ("reservation.created", {"lines": [{"sku": "X", "qty": 0}]}, "payload.lines[0].qty"),
        ("reservation.created", {"expires_at": "demain"}, "payload.expires_at"),
        ("reservation.closed", {"status": "stolen"}, "payload.status"),
        ("cart.sent", {"sent_id": "not-a-uuid"}, "payload.sent_id"),
        ("cart.sent", {"lines": [{"sku": "a b", "qty": 1, "price_cents": 1}]}, "payload.lines"),
        ("order.request", {"card_id": "x" * 65}, "payload.card_id"),
    ],
)
def test_a_bad_payload_is_a_clear_refusal_never_a_500(hub, hub_data, tx_type, payload, field):
    sku = _skus(hub, 1)[0]
    good = {
        "reservation.created": _reservation("r-bad", "crd", sku),
        "reservation.closed": {
            "reservation_id": "r-bad",
            "status": "collected",
            "closed_at": clock.now_iso(),
        },
        "cart.sent": {
            "sent_id": str(uuid.uuid4()),
            "card_id": "crd",
            "lines": [{"sku": sku, "qty": 1, "price_cents": 100}],
            "sent_at": clock.now_iso(),
        },
        "order.request": {
            "request_id": str(uuid.uuid4()),
            "fulfilment": "pickup",
            "customer_name": "Chloé Martin",
            "customer_email": "c@example.org",
            "lines": [{"sku": sku, "qty": 1}],
        },
    }[tx_type]
    [res] = _apply(hub, hub_data, _tx(tx_type, {**good, **payload}))
    assert res["status"] == "rejected" and res["reason"] == "invalid_payload"
    assert field in res["message"]


def test_an_unknown_sku_in_a_reservation_is_refused_as_such(hub, hub_data):
    [res] = _apply(
        hub, hub_data, _tx("reservation.created", _reservation("r-x", "crd", "NO-SUCH-SKU"))
    )
    assert res["status"] == "rejected" and res["reason"] == "unknown_sku"


def test_a_home_delivery_asked_for_at_a_kiosk_joins_the_account(hub, hub_data):
    customer = _customer(hub, hub_data)
    card = cards.issue_card(hub, customer)
    sku = _skus(hub, 1)[0]
    request = {
        "request_id": str(uuid.uuid4()),
        "fulfilment": "home",
        "customer_name": "Chloé Martin",
        "customer_email": "autre.adresse@example.org",  # not the account's: the card decides
        "address": {"line1": "3 rue des Lilas", "postcode": "69003", "city": "Lyon"},
        "lines": [{"sku": sku, "qty": 1}],
        "card_id": card,
    }
    [res] = _apply(hub, hub_data, _tx("order.request", request))
    assert res["status"] == "accepted", res
    [delivery] = account_history.deliveries_of(hub, customer)
    assert delivery["number"] == res["result"]["number"]
    html = _shopper(hub_data, hub, customer).get("/shop/compte").get_data(as_text=True)
    assert delivery["number"] in html and "Livraison demandée" in html
    assert "Livraison à domicile" in html


# --- rights and retention ------------------------------------------------------------


def _history(hub, hub_data: Path, customer: str) -> tuple[str, str]:
    """A reservation, a cart sent and a home delivery for the customer's card; the
    delivery's id and the reservation's id."""
    card = cards.issue_card(hub, customer)
    sku = _skus(hub, 1)[0]
    reservation = _reservation(f"r-{secrets.token_hex(4)}", card, sku)
    cart = {
        "sent_id": str(uuid.uuid4()),
        "card_id": card,
        "lines": [{"sku": sku, "qty": 1, "price_cents": 1990}],
        "sent_at": clock.now_iso(),
    }
    request = {
        "request_id": str(uuid.uuid4()),
        "fulfilment": "home",
        "customer_name": "Chloé Martin",
        "customer_email": "kiosk.typed@example.org",
        "address": {"line1": "3 rue des Lilas", "postcode": "69003", "city": "Lyon"},
        "lines": [{"sku": sku, "qty": 1}],
        "card_id": card,
    }
    results = _apply(
        hub,
        hub_data,
        _tx("reservation.created", reservation),
        _tx("cart.sent", cart),
        _tx("order.request", request),
    )
    assert [r["status"] for r in results] == ["accepted"] * 3, results
    return results[2]["result"]["delivery_id"], reservation["reservation_id"]


def test_export_and_erasure_cover_the_kiosk_history(hub, hub_data):
    customer = _customer(hub, hub_data)
    delivery_id, reservation_id = _history(hub, hub_data, customer)
    ring = KeyRing.open(hub_data)
    held = customer_export.export(hub, ring, customer)
    assert [r["id"] for r in held["records"]["kiosk_reservations"]] == [reservation_id]
    assert len(held["records"]["sent_carts"]) == 1
    assert "delivery_orders" not in held["records"]  # sealed columns: not dumped raw
    # The kiosk's delivery, typed with another address, is the account's by its card.
    [delivery] = held["home_deliveries"]
    assert delivery["id"] == delivery_id and delivery["address_line1"] == "3 rue des Lilas"

    erasure.erase_customer(hub, ring, customer)
    assert (
        hdb.scalar(hub, "SELECT count(*) FROM kiosk_reservations WHERE id = ?", [reservation_id])
        == 0
    )
    assert hdb.scalar(hub, "SELECT count(*) FROM sent_carts") == 0
    # The home delivery is an accounting record: kept, detached, its person blanked.
    row = hdb.one(hub, "SELECT * FROM delivery_orders WHERE id = ?", [delivery_id])
    assert row is not None and row["customer_id"] is None
    assert "Lilas" not in json.dumps(row, default=str)
    assert "Chloé" not in json.dumps(row, default=str)


def test_retention_deletes_the_kiosk_history_after_three_years(hub, hub_data):
    customer = _customer(hub, hub_data)
    _history(hub, hub_data, customer)
    later = clock.utcnow() + timedelta(days=3 * 365 + 2)
    soon = retention.run(hub, dry_run=True, now=clock.utcnow() + timedelta(days=30))
    assert soon["rules"]["kiosk_history_deleted"]["count"] == 0
    dry = retention.run(hub, dry_run=True, now=later)
    assert dry["rules"]["kiosk_history_deleted"]["count"] == 2
    assert hdb.scalar(hub, "SELECT count(*) FROM kiosk_reservations") == 1  # dry: kept
    retention.run(hub, now=later, ring=KeyRing.open(hub_data))
    assert hdb.scalar(hub, "SELECT count(*) FROM kiosk_reservations") == 0
    assert hdb.scalar(hub, "SELECT count(*) FROM sent_carts") == 0


# --- « Mon compte », looked at ---------------------------------------------------------


def test_mon_compte_in_one_place_on_a_phone_and_a_desktop(browser, hub_factory, hub_data, hub):
    customer = _customer(hub, hub_data)
    key = keys.current_private_key(hub_data)
    sku = _skus(hub, 1)[0]
    web_order = create_order(
        hub, LYON, "Chloé Martin", "c@example.com", [{"sku": sku, "qty": 2}], private_key=key
    )["order"]
    customers.claim_order(hub, customer, web_order["id"])
    card = cards.issue_card(hub, customer)
    request = {
        "request_id": str(uuid.uuid4()),
        "fulfilment": "pickup",
        "customer_name": "Chloé Martin",
        "customer_email": "c@example.com",
        "lines": [{"sku": sku, "qty": 1}],
        "card_id": card,
    }
    _apply(hub, hub_data, _tx("order.request", request))
    _history(hub, hub_data, customer)
    # A return of the web order for store credit, and points turned into credit.
    lines = hdb.rows(hub, "SELECT line, qty FROM order_lines WHERE order_id = ?", [web_order["id"]])
    _apply(
        hub,
        hub_data,
        _tx(
            "order.ready",
            {
                "order_id": web_order["id"],
                "lines": [{"line": r["line"], "qty_ready": r["qty"]} for r in lines],
                "shelf_slot": "A-01",
                "staff": "sf-1",
            },
        ),
    )
    _apply(
        hub,
        hub_data,
        _tx(
            "order.handover",
            {
                "handover_id": str(uuid.uuid4()),
                "order_id": web_order["id"],
                "lines": [{"line": r["line"], "qty": r["qty"]} for r in lines],
                "collector": "customer",
                "method": "qr",
                "staff": "sf-1",
            },
        ),
    )
    [ret] = _apply(
        hub,
        hub_data,
        _tx(
            "order.return",
            {
                "return_id": str(uuid.uuid4()),
                "order_id": web_order["id"],
                "lines": [
                    {"line": lines[0]["line"], "sku": sku, "qty": 1, "condition": "resellable"}
                ],
                "reason": "trop petit",
                "refund": "store_credit",
                "staff": "sf-1",
            },
        ),
    )
    assert ret["status"] == "accepted", ret
    loyalty.set_rules(hub, {"points_per_euro": 10, "block_points": 100, "block_cents": 500})
    with hdb.write(hub):
        hdb.execute(hub, "UPDATE customers SET loyalty_points = 250 WHERE id = ?", [customer])
    converted = loyalty.convert(hub, customer)

    server = hub_factory(hub_data)
    app = _hub_app(hub_data)
    cookie = app.session_interface.get_signing_serializer(app).dumps(
        {"customer": _session(hub, customer), "lang": "fr"}
    )
    errors: list[str] = []
    for name, size in (("390x844", (390, 844)), ("1280x800", (1280, 800))):
        context = browser.new_context(
            viewport={"width": size[0], "height": size[1]}, locale="fr-FR"
        )
        context.add_cookies(
            [{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie, "url": server.url}]
        )
        page = context.new_page()
        errors.clear()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(server.url + "/shop/compte")
        expect(page.locator("#account-orders-title")).to_have_text("Mes commandes")
        orders = page.locator(".account-orders").inner_text()
        assert "En ligne" in orders and "En magasin, " in orders
        assert "Livraison à domicile" in orders
        expect(page.locator("#reservations")).to_contain_text("Mise de côté jusqu’au ")
        expect(page.locator("#returns")).to_contain_text(f"Commande {web_order['number']}")
        expect(page.locator("#returns")).to_contain_text("1 article rendu")
        credit = page.locator("#store-credit").inner_text()
        assert converted.credit_code in credit and ret["result"]["credit_code"] in credit
        assert "Points de fidélité" in credit and "Retour de la commande" in credit
        expect(page.locator("#sent-carts")).to_contain_text("Panier envoyé depuis le magasin")
        screenshot(page, f"account-history-{name}")
        page.locator("#reservations").scroll_into_view_if_needed()
        screenshot(page, f"account-history-reservations-{name}")
        page.locator("#store-credit").scroll_into_view_if_needed()
        screenshot(page, f"account-history-credit-{name}")
        page.locator("#sent-carts").scroll_into_view_if_needed()
        screenshot(page, f"account-history-sent-{name}")
        assert_axe_clean(page, f"Mon compte in one place, {name}")
        # Nothing wider than the screen.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= size[0]
        assert errors == []
        context.close()
    english = _shopper(hub_data, hub, customer, "en").get("/shop/compte").get_data(as_text=True)
    assert "My reservations in store" in english and "My store credit" in english
    assert "Cart sent from the store" in english and "Online" in english


def test_kiosk_screens_say_it_is_kept_in_my_account(
    browser, hub, hub_data, synced_store, server_factory
):
    customer = _customer(hub, hub_data)
    token = cards.card_token(hub, hub_data, customer)
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        here = stocked_variants(store, 2, here_min=3)
    finally:
        store.close()
    server = server_factory(synced_store, store_env(f"http://127.0.0.1:{free_port()}", hub_data))
    for width, height in ((1080, 1920), (1920, 1080)):
        size = f"{width}x{height}"
        kiosk = browser.new_context(viewport={"width": width, "height": height}, locale="fr-FR")
        page = kiosk.new_page()
        page.goto(server.url + "/browse")
        scan_card(page, token)
        expect(page.locator(".recognised")).to_be_visible()
        csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
        for v in here:
            kiosk.request.post(
                server.url + "/panier/ajouter", form={"csrf_token": csrf, "sku": v["sku"]}
            )
        page.goto(server.url + "/panier")
        page.get_by_role("link", name="Envoyer sur mon téléphone").click()
        page.wait_for_load_state("load")
        expect(page.locator("#cart-in-account")).to_have_text(
            "Vous le retrouverez aussi dans Mon compte."
        )
        screenshot(page, f"kiosk-cart-phone-in-account-{size}")
        assert_axe_clean(page, f"send to my phone, recognised shopper, {size}")
        page.goto(server.url + "/panier")
        page.locator("form[action='/panier/reserver'] button").click()
        page.wait_for_load_state("load")
        expect(page.locator("#reservation-in-account")).to_be_visible()
        screenshot(page, f"kiosk-reservation-in-account-{size}")
        assert_axe_clean(page, f"reservation ticket, recognised shopper, {size}")
        kiosk.close()
    # An anonymous shopper's pages say nothing of an account, and nothing is queued.
    anon = browser.new_context(viewport={"width": 1080, "height": 1920}, locale="fr-FR")
    page = anon.new_page()
    page.goto(server.url + "/browse")
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    anon.request.post(
        server.url + "/panier/ajouter", form={"csrf_token": csrf, "sku": here[0]["sku"]}
    )
    page.goto(server.url + "/panier/telephone")
    expect(page.locator("h1")).to_be_visible()
    assert page.locator("#cart-in-account").count() == 0
    anon.close()
    queued = [r["type"] for r in _queued(synced_store)]
    assert queued.count("cart.sent") == 2 and queued.count("reservation.created") == 2
