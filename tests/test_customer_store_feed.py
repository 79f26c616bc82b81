"""What a store learns of a customer (issue 14): their card id and first name, only where
they have an order; the kiosk greets them offline; the counter sees their orders.

A real hub (the web shop's sign-in, checkout and card pages: the hooks as they run), real
stores synced from it (Lyon, where the order is; Paris, where it is not), then the Lyon
store server with the hub stopped.
"""

from __future__ import annotations

import io
import json
import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from app.core import clock
from app.core import db as dbmod
from app.core.protocol import CHANGE_CUSTOMER_CARD
from app.hub import database as hdb
from app.hub.domain import cards, customer_feed, customers, erasure, keys
from app.hub.domain.orders import create_order
from app.hub.domain.pii import KeyRing
from app.store.migrations import migrate
from app.store.sync import client
from app.store.sync.pull import pull_once

from .axe_helpers import assert_axe_clean
from .card_scan import post_card, scan_card
from .conftest import free_port, screenshot, staff_login, staff_login_page
from .hub_fixtures import BORDEAUX, LYON, PARIS, hub_db, store_secrets, validate
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import store_env
from .test_customer_accounts import Customer, _last_code

NBSP = "\u00a0"
FIRST, LAST = "Chloé", "Lefèvre"
EMAIL = "chloe.lefevre@example.com"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def hub(hub_data: Path):
    db = hub_db(hub_data)
    yield db
    db.close()


def _sku(data: Path, store_id: str = LYON) -> str:
    db = hub_db(data)
    try:
        return hdb.scalar(
            db,
            "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 ORDER BY sku LIMIT 1",
            [store_id],
        )
    finally:
        db.close()


def _sign_in(hub_url: str, data: Path) -> tuple[Customer, str]:
    """A shopper signed in with a code, who then gave a first name (sealed, as the
    account keeps it); their customer id."""
    shopper = Customer(hub_url)
    shopper.ask_code(EMAIL)
    shopper.give_code(_last_code(data))
    db = hub_db(data)
    try:
        ring = KeyRing.open(data)
        customer_id = customers.find_by_email(db, ring, EMAIL)["id"]
        with hdb.write(db):
            hdb.execute(
                db,
                "UPDATE customers SET first_name_enc = ?, last_name_enc = ? WHERE id = ?",
                [
                    ring.encrypt(FIRST, "customers.first_name"),
                    ring.encrypt(LAST, "customers.last_name"),
                    customer_id,
                ],
            )
    finally:
        db.close()
    return shopper, customer_id


def _order_in_shop(shopper: Customer, data: Path, store_id: str = LYON) -> str:
    """An order placed through the web shop's checkout, signed in; its number."""
    shopper.post("/shop/panier/ajouter", {"sku": _sku(data, store_id), "qty": "1"})
    details = {"magasin": store_id, "name": f"{FIRST} {LAST}", "email": EMAIL}
    placed = shopper.post("/shop/commande", details)
    return re.search(r"CC-\d{8}", placed.url).group(0)


def _guest_order(data: Path, name: str, email: str, store_id: str = LYON) -> dict:
    db = hub_db(data)
    try:
        return create_order(
            db,
            store_id,
            name,
            email,
            [{"sku": _sku(data, store_id), "qty": 1}],
            private_key=keys.current_private_key(data),
        )["order"]
    finally:
        db.close()


def _card_token(shopper: Customer) -> str:
    """The token in the QR code of the shopper's card page (issued on first draw)."""
    png = shopper.get("/shop/compte/carte/qr.png")
    assert png.status_code == 200
    [decoded] = zxingcpp.read_barcodes(
        Image.open(io.BytesIO(png.content)), formats=zxingcpp.BarcodeFormat.QRCode
    )
    return decoded.text


def _sync(store: Path, hub_url: str, hub_data: Path, store_id: str) -> None:
    db = dbmod.connect(dbmod.db_path(store))
    try:
        migrate(db)
        hub = client.HubClient(hub_url, store_id, store_secrets(hub_data)[store_id])
        pull_once(db, hub, own_store_id=store_id)
    finally:
        db.close()


def _rows(store: Path, sql: str, params=()) -> list[tuple]:
    db = dbmod.connect(dbmod.db_path(store))
    try:
        return [tuple(r) for r in db.execute(sql, list(params)).fetchall()]
    finally:
        db.close()


def _live_card(data: Path, customer_id: str) -> str | None:
    db = hub_db(data)
    try:
        return cards.current_card(db, customer_id)
    finally:
        db.close()


def _returns(store: Path, returns: list[tuple[str, int]]) -> None:
    """Returns recorded at the store (as app/store/domain/orders' return does), on orders
    given by number, each of ``qty`` units for store credit."""
    db = dbmod.connect(dbmod.db_path(store))
    try:
        with dbmod.write(db):
            for number, qty in returns:
                order_id, sku = db.execute(
                    "SELECT o.id, l.sku FROM orders o JOIN order_lines l ON l.order_id = o.id "
                    "WHERE o.number = ?",
                    [number],
                ).fetchone()
                db["returns"].insert(
                    {
                        "id": secrets.token_hex(8),
                        "order_id": order_id,
                        "at": clock.now_iso(),
                        "staff_id": "s-test",
                        "reason": "trop petit",
                        "refund": "store_credit",
                        "lines": json.dumps([{"line": 1, "sku": sku, "qty": qty}]),
                    }
                )
    finally:
        db.close()


def _cards(store: Path) -> list[tuple]:
    return _rows(store, "SELECT card_id, customer_id, first_name FROM customer_cards")


def test_card_and_first_name_reach_only_the_store_with_the_order_then_kiosk_and_counter(
    hub_server, hub_data, synced_store, tmp_path, server_factory, browser
):
    shopper, customer_id = _sign_in(hub_server.url, hub_data)
    number = _order_in_shop(shopper, hub_data)  # the checkout's hook: the order joins
    other = _guest_order(hub_data, "Bruno Garnier", "bruno.garnier@example.org")
    token = _card_token(shopper)  # the card page's hook: a first card is issued
    card_id = _live_card(hub_data, customer_id)

    paris = tmp_path / "paris"
    paris.mkdir()
    _sync(synced_store, hub_server.url, hub_data, LYON)
    _sync(paris, hub_server.url, hub_data, PARIS)

    # Lyon holds the card and the first name (no surname, no e-mail), and whose order it is.
    assert _cards(synced_store) == [(card_id, customer_id, FIRST)]
    assert _rows(synced_store, "SELECT customer_id FROM orders WHERE number = ?", [number]) == [
        (customer_id,)
    ]
    assert _rows(synced_store, "SELECT customer_id FROM orders WHERE id = ?", [other["id"]]) == [
        (None,)
    ]
    # Paris, where the customer has no order, learns nothing of them.
    assert _cards(paris) == []
    assert _rows(paris, "SELECT count(*) FROM orders WHERE customer_id = ?", [customer_id]) == [
        (0,)
    ]
    # The change was appended for Lyon alone, keyed by the customer (erasure finds it).
    db = hub_db(hub_data)
    sent = hdb.rows(
        db, "SELECT seq, store_id, key, data FROM changes WHERE kind = ?", [CHANGE_CUSTOMER_CARD]
    )
    db.close()
    assert [(r["store_id"], r["key"]) for r in sent] == [(LYON, customer_id)]
    assert LAST not in sent[0]["data"] and "@" not in sent[0]["data"]
    # As the API sends it (docs/openapi.yaml): the order with its customer id, the card.
    lyon = client.HubClient(hub_server.url, LYON, store_secrets(hub_data)[LYON])
    page = lyon.get_changes(str(sent[0]["seq"] - 200), limit=2000)
    validate(page, "ChangesPage")
    ordered = [c["data"] for c in page["changes"] if c["kind"] == "order"]
    assert [o["customer_id"] for o in ordered if o["number"] == number][-1] == customer_id
    mine = [c for c in page["changes"] if c["key"] == customer_id]
    assert [c["data"] for c in mine] == [
        {
            "customer_id": customer_id,
            "card_id": card_id,
            "first_name": FIRST,
            "personal": None,
            "points": 0,
        }
    ]

    # Renewing the card (the card page's button): the new id replaces the old at Lyon.
    page = shopper.get("/shop/compte/carte")
    renewed = shopper.http.post(
        hub_server.url + "/shop/compte/carte/nouvelle",
        data={"csrf_token": _CSRF.search(page.text).group(1)},
        timeout=15,
        allow_redirects=False,
    )
    assert renewed.status_code == 303
    new_token = _card_token(shopper)
    new_id = _live_card(hub_data, customer_id)
    assert new_id != card_id
    _sync(synced_store, hub_server.url, hub_data, LYON)
    _sync(paris, hub_server.url, hub_data, PARIS)
    assert _cards(synced_store) == [(new_id, customer_id, FIRST)]
    assert _cards(paris) == []

    # A return made here on the customer's order, and one on somebody else's.
    _returns(synced_store, [(number, 2), (other["number"], 1)])

    # The hub stopped: the Lyon store greets the customer by first name at the kiosk.
    hub_server.stop()
    dead_hub = f"http://127.0.0.1:{free_port()}"
    server = server_factory(synced_store, store_env(dead_hub, hub_data))
    kiosk = requests.Session()
    greeted = post_card(kiosk, server.url, new_token)
    assert greeted.status_code == 200
    assert f"Bonjour {FIRST}{NBSP}! Vous êtes reconnu(e)" in greeted.text
    # The old card is still a signed code, but names nobody here any more.
    stale = requests.Session()
    old = post_card(stale, server.url, token)
    assert FIRST not in old.text

    # The counter: the new card opens the customer's open orders here, not others'.
    staff = requests.Session()
    staff_login(staff, synced_store, server.url)
    counter = post_card(staff, server.url, new_token, "/staff/scan", "/staff/orders")
    assert counter.status_code == 200
    assert counter.url == f"{server.url}/staff/customer"  # no customer id in the URL
    assert customer_id not in counter.url and new_token not in counter.url
    assert f"Carte client{NBSP}: {FIRST}" in counter.text
    assert number in counter.text and other["number"] not in counter.text
    assert "1 commande en cours dans ce magasin" in counter.text
    assert "1 retour" not in counter.text and "1 retour" in counter.text
    assert "2 articles rendus" in counter.text and "1 article rendu" not in counter.text
    assert LAST not in counter.text and EMAIL not in counter.text
    refused = post_card(staff, server.url, token, "/staff/scan", "/staff/orders")
    # A valid card that names nobody with an order here: said plainly (was "not a
    # pickup code" before issue 14's review).
    assert refused.status_code == 404 and "aucune commande dans ce magasin" in refused.text
    log = server.log.read_text(errors="replace")
    assert FIRST not in log and new_id not in log and card_id not in log

    # Look at them: the counter on the tablet, the kiosk in portrait.
    tablet = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = tablet.new_page()
    staff_login_page(page, server.url, synced_store)
    scan_card(page, new_token)  # the scanner's burst on the counter's page
    assert page.locator("h1").inner_text() == f"Carte client{NBSP}: {FIRST}"
    screenshot(page, "counter-customer-card-1280x800")
    assert_axe_clean(page, "the counter, a customer card scanned")
    page.locator("button[name=lang][value=en]").click()
    expect(page.locator("h1")).to_have_text(f"Customer card: {FIRST}")
    english = page.locator("main").inner_text()
    assert f"Customer card: {FIRST}" in english and "1 open order in this store" in english
    assert "2 items returned" in english and "store credit" in english
    assert page.goto(server.url + "/staff/customers/" + customer_id).status == 404  # gone
    tablet.close()
    portrait = browser.new_context(viewport={"width": 1080, "height": 1920}, locale="fr-FR")
    page = portrait.new_page()
    page.goto(server.url + "/browse")
    scan_card(page, new_token)
    assert f"Bonjour {FIRST}{NBSP}!" in page.locator(".recognised").inner_text()
    screenshot(page, "kiosk-greeting-fed-card-1080x1920")
    portrait.close()


def test_only_stores_with_an_open_or_recent_order_are_told(hub, hub_data):
    ring = KeyRing.open(hub_data)
    email = f"{secrets.token_hex(4)}.{EMAIL}"
    customer_id = customers.find_or_create(hub, ring, email, FIRST, LAST)[0]["id"]
    old = _guest_order(hub_data, f"{FIRST} {LAST}", email, BORDEAUX)
    long_ago = clock.iso(clock.utcnow() - customer_feed.RECENT - timedelta(days=1))
    with hdb.write(hub):
        hdb.execute(
            hub,
            "UPDATE orders SET customer_id = ?, status = 'collected', placed_at = ? WHERE id = ?",
            [customer_id, long_ago, old["id"]],
        )
    # No card yet: nothing to send; an old collected order in Bordeaux does not count.
    assert customer_feed.card_changed(hub, ring, customer_id) == 0
    cards.issue_card(hub, customer_id)
    assert customer_feed.stores_of(hub, customer_id) == []
    assert customer_feed.card_changed(hub, ring, customer_id) == 0
    # An open order in Paris: Paris (only) is told.
    open_order = _guest_order(hub_data, f"{FIRST} {LAST}", email, PARIS)
    customers.claim_order(hub, customer_id, open_order["id"])
    customer_feed.order_joined(hub, ring, customer_id, open_order["id"])
    rows = hdb.rows(
        hub,
        "SELECT kind, store_id, key FROM changes WHERE key IN (?, ?) AND kind <> 'stock' "
        "ORDER BY seq",
        [customer_id, open_order["id"]],
    )
    assert [(r["kind"], r["store_id"]) for r in rows][-2:] == [
        ("order", PARIS),
        (CHANGE_CUSTOMER_CARD, PARIS),
    ]
    assert customer_feed.stores_of(hub, customer_id) == [PARIS]
    # Somebody else's order is not joined to this customer.
    stranger = _guest_order(hub_data, "Bruno Garnier", "bruno@example.org", LYON)
    customer_feed.order_joined(hub, ring, customer_id, stranger["id"])
    assert customer_feed.stores_of(hub, customer_id) == [PARIS]


def test_guest_orders_joined_at_sign_in_bring_the_card_to_their_store(
    hub_server, hub_data, tmp_path
):
    shopper, customer_id = _sign_in(hub_server.url, hub_data)
    _card_token(shopper)  # a card, but no order anywhere yet: no store is told
    card_id = _live_card(hub_data, customer_id)
    guest = _guest_order(hub_data, f"{FIRST} {LAST}", EMAIL, BORDEAUX)  # signed out
    bordeaux = tmp_path / "bordeaux"
    bordeaux.mkdir()
    _sync(bordeaux, hub_server.url, hub_data, BORDEAUX)
    assert _cards(bordeaux) == []
    assert _rows(bordeaux, "SELECT customer_id FROM orders WHERE id = ?", [guest["id"]]) == [
        (None,)
    ]

    # Signing in again proves the address: the guest order joins the account (the code
    # page's hook), and Bordeaux learns whose order it is and the customer's card.
    again = Customer(hub_server.url)
    again.ask_code(EMAIL)
    assert again.give_code(_last_code(hub_data)).url.endswith("/shop/compte")
    _sync(bordeaux, hub_server.url, hub_data, BORDEAUX)
    assert _cards(bordeaux) == [(card_id, customer_id, FIRST)]
    assert _rows(bordeaux, "SELECT customer_id FROM orders WHERE id = ?", [guest["id"]]) == [
        (customer_id,)
    ]

    # Erased at the hub: Bordeaux forgets the card, and the order names nobody any more.
    db = hub_db(hub_data)
    try:
        assert erasure.erase_customer(db, KeyRing.open(hub_data), customer_id) is not None
        kept = hdb.rows(db, "SELECT data FROM changes WHERE kind = ?", [CHANGE_CUSTOMER_CARD])
    finally:
        db.close()
    assert kept == []  # the first name left the hub's feed with the customer
    _sync(bordeaux, hub_server.url, hub_data, BORDEAUX)
    assert _cards(bordeaux) == []
    assert _rows(bordeaux, "SELECT customer_id FROM orders WHERE id = ?", [guest["id"]]) == [
        (None,)
    ]


def test_a_corrected_first_name_reaches_the_stores_holding_the_card(
    hub_server, hub_data, synced_store
):
    shopper, customer_id = _sign_in(hub_server.url, hub_data)
    _order_in_shop(shopper, hub_data)
    _card_token(shopper)
    card_id = _live_card(hub_data, customer_id)
    _sync(synced_store, hub_server.url, hub_data, LYON)
    assert _cards(synced_store) == [(card_id, customer_id, FIRST)]
    done = shopper.post(
        "/shop/compte/donnees/nom",
        {"first_name": "Zoé", "last_name": LAST},
        allow_redirects=False,
    )
    assert done.status_code == 303
    _sync(synced_store, hub_server.url, hub_data, LYON)
    assert _cards(synced_store) == [(card_id, customer_id, "Zoé")]
