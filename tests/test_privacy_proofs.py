"""The proofs of issue 14's privacy promises, end to end.

(a) An erased customer leaves no personal data in the hub's database or in either of
    two real store databases: every table and every text column is searched for their
    e-mail, first name, surname, card ids and customer id (both hub backends).
(b) The kiosk keeps nothing after its idle reset: no cookie carrying a card id, no
    localStorage or sessionStorage entry, no live camera track. And a card scanned at
    the kiosk never lands in a URL (the scanner's burst posts it; a GET is refused).
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.core import db as dbmod
from app.core.cart_codec import CartLine
from app.hub import database as hdb
from app.hub.domain import cards, customer_feed, customers, erasure, keys
from app.hub.domain.orders import create_order
from app.hub.domain.pii import KeyRing
from app.store.domain import account_actions, consent, customer_cards, forgetting, reservations
from app.store.domain.order_requests import check_customer, queue_order_request
from app.store.migrations import migrate
from app.store.sync import client
from app.store.sync.pull import pull_once
from app.store.sync.push import push_once

from .card_scan import scan_card
from .conftest import free_port, screenshot
from .hub_fixtures import PARIS, hub_db, store_secrets
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, store_env

EMAIL = "ysolde.kermarrec@example.net"
FIRST, LAST = "Ysolde", "Kermarrec"
OTHER = ("Bruno", "Autre", "bruno.autre@example.net")


# --- (a) an erased customer leaves nothing anywhere -----------------------------------


def _sync(store: Path, hub_url: str, hub_data: Path, store_id: str, push: bool = False) -> None:
    db = dbmod.connect(dbmod.db_path(store))
    try:
        migrate(db)
        hub = client.HubClient(hub_url, store_id, store_secrets(hub_data)[store_id])
        if push:
            push_once(db, hub)
        pull_once(db, hub, own_store_id=store_id)
    finally:
        db.close()


def _sku(hub, store_id: str) -> str:
    return hdb.scalar(
        hub,
        "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 ORDER BY sku LIMIT 1",
        [store_id],
    )


def _order(hub, hub_data: Path, store_id: str, name: str, email: str) -> dict:
    return create_order(
        hub,
        store_id,
        name,
        email,
        [{"sku": _sku(hub, store_id), "qty": 1}],
        private_key=keys.current_private_key(hub_data),
    )["order"]


def _variants(needle: str) -> set[str]:
    """How a value may be written in a column: as is, in JSON (escaped), folded."""
    low = needle.casefold()
    return {
        low,
        json.dumps(needle)[1:-1].casefold(),
        json.dumps(needle, ensure_ascii=True)[1:-1].casefold(),
    }


def _hub_traces(hub, needles: list[str]) -> list[tuple]:
    """Every text value of every hub table holding a needle."""
    wanted = set().union(*(_variants(n) for n in needles))
    found = []
    for table, columns in hdb.table_columns(hub).items():
        for row in hdb.rows(hub, f"SELECT * FROM {table}"):  # noqa: S608 (table names)
            for column in columns:
                value = row[column]
                if isinstance(value, bytes | memoryview):
                    value = bytes(value).decode("utf-8", "replace")
                if isinstance(value, str) and any(n in value.casefold() for n in wanted):
                    found.append((table, column, value[:120]))
    return found


def _store_traces(store: Path, needles: list[str]) -> list[tuple]:
    """Every text (or blob) value of every table of a store database holding a needle:
    the tables read from sqlite_master, FTS shadow tables included."""
    wanted = set().union(*(_variants(n) for n in needles))
    db = sqlite3.connect(dbmod.db_path(store))
    try:
        tables = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            ).fetchall()
        ]
        found = []
        for table in tables:
            try:
                cursor = db.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (names from sqlite_master)
            except sqlite3.DatabaseError:
                continue  # an FTS5 virtual table's own name reads through its shadows
            names = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(names, row, strict=True):
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    if isinstance(value, str) and any(n in value.casefold() for n in wanted):
                        found.append((table, column, value[:120]))
        return found
    finally:
        db.close()


def _kiosk_actions(store, card_id: str) -> None:
    """What a recognised shopper does at the kiosk that queues their card id: withdraw
    consent (« Ne plus me proposer de suggestions »), reserve, send the cart to the phone."""
    assert consent.revoke(store, card_id) is not None
    sku = store.execute(
        "SELECT sku FROM stock_levels WHERE qty >= 2 ORDER BY sku LIMIT 1"
    ).fetchone()[0]
    reservations.create(store, [(sku, 1)], card_id=card_id)
    line = CartLine(sku, 1, 1999)
    assert account_actions.cart_sent(store, card_id, [line]) is not None


def test_an_erased_customer_leaves_no_personal_data_at_the_hub_or_in_two_stores(
    hub_server, hub_data, synced_store, tmp_path
):
    hub = hub_db(hub_data)
    ring = KeyRing.open(hub_data)
    try:
        me, _ = customers.find_or_create(hub, ring, EMAIL, FIRST, LAST)
        other, _ = customers.find_or_create(hub, ring, OTHER[2], OTHER[0], OTHER[1])
        first_card = cards.issue_card(hub, me["id"])
        # An order in each store, placed signed in; a card renewed (the old id was sent).
        lyon_order = _order(hub, hub_data, LYON, f"{FIRST} {LAST}", EMAIL)
        paris_order = _order(hub, hub_data, PARIS, f"{FIRST} {LAST}", EMAIL)
        others_order = _order(hub, hub_data, LYON, " ".join(OTHER[:2]), OTHER[2])
        for order in (lyon_order, paris_order):
            customers.claim_order(hub, me["id"], order["id"])
            customer_feed.order_joined(hub, ring, me["id"], order["id"])
        customers.claim_order(hub, other["id"], others_order["id"])
        customer_feed.order_joined(hub, ring, other["id"], others_order["id"])
    finally:
        hub.close()

    paris = tmp_path / "paris"
    paris.mkdir()
    _sync(synced_store, hub_server.url, hub_data, LYON)
    _sync(paris, hub_server.url, hub_data, PARIS)
    hub = hub_db(hub_data)
    try:
        second_card = cards.issue_card(hub, me["id"])  # renewed: both ids reached Lyon
        customer_feed.card_changed(hub, ring, me["id"])
    finally:
        hub.close()
    # At Lyon's kiosk the customer also ordered what was not there (order.request, with
    # the e-mail they typed), recognised by their card; the hub has it.
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        sku = store.execute("SELECT sku FROM variants ORDER BY sku LIMIT 1").fetchone()[0]
        queue_order_request(
            store, [(sku, 1)], check_customer("pickup", f"{FIRST} {LAST}", EMAIL, None)
        )
        with dbmod.write(store):
            customer_cards.save_card(store, second_card, me["id"], FIRST)
        # Recognised by their card, they also withdrew consent to suggestions, reserved
        # an article and sent their cart to their phone: all queued with the card id.
        _kiosk_actions(store, second_card)
    finally:
        store.close()
    _sync(synced_store, hub_server.url, hub_data, LYON, push=True)
    _sync(paris, hub_server.url, hub_data, PARIS)
    # The hub has those; the same again, still unsent when the erasure arrives.
    store = dbmod.connect(dbmod.db_path(synced_store))
    try:
        acked = store.execute(
            "SELECT type FROM outbox WHERE acked_at IS NOT NULL AND type IN "
            "('consent.revoked', 'reservation.created', 'cart.sent') ORDER BY type"
        ).fetchall()
        assert [r[0] for r in acked] == ["cart.sent", "consent.revoked", "reservation.created"]
        _kiosk_actions(store, second_card)
        unsent = store.execute(
            "SELECT type FROM outbox WHERE acked_at IS NULL AND type IN "
            "('consent.revoked', 'reservation.created', 'cart.sent') ORDER BY type"
        ).fetchall()
        assert [r[0] for r in unsent] == ["cart.sent", "consent.revoked", "reservation.created"]
    finally:
        store.close()

    needles = [EMAIL, FIRST, LAST, first_card, second_card, me["id"]]
    hub = hub_db(hub_data)
    try:
        assert _hub_traces(hub, needles)  # the search finds them while they are there
    finally:
        hub.close()
    held_lyon = {t for t, _, _ in _store_traces(synced_store, needles)}
    held_paris = {t for t, _, _ in _store_traces(paris, needles)}
    assert {"orders", "customer_cards", "card_revocations", "outbox"} <= held_lyon, held_lyon
    assert "orders" in held_paris, held_paris

    hub = hub_db(hub_data)
    try:
        assert erasure.erase_customer(hub, ring, me["id"]) is not None
    finally:
        hub.close()
    # Each store applies the erasure at its next sync (nothing else is run there).
    _sync(synced_store, hub_server.url, hub_data, LYON)
    _sync(paris, hub_server.url, hub_data, PARIS)

    hub = hub_db(hub_data)
    try:
        # Nothing names her any more: no e-mail, no first name, no surname, anywhere.
        assert _hub_traces(hub, [EMAIL, FIRST, LAST]) == []
        # Her ids are left in one place only: the erasure notice itself (ids only), which
        # every store must still be able to read to forget her (an offline one too).
        left = _hub_traces(hub, needles)
        notices = hdb.rows(
            hub,
            "SELECT key, data FROM changes WHERE kind = 'customer_erased' AND key = ?",
            [me["id"]],
        )
        assert len(notices) == 1
        assert {(t, c) for t, c, _ in left} <= {("changes", "key"), ("changes", "data")}
        assert sorted(json.loads(notices[0]["data"])) == ["card_ids", "customer_id", "order_ids"]
        assert len(left) == 2, left
        # The other customer is untouched: the search is not blind.
        assert _hub_traces(hub, [OTHER[2]]) or _hub_traces(hub, [other["id"]])
    finally:
        hub.close()
    assert _store_traces(synced_store, needles) == []
    assert _store_traces(paris, needles) == []
    assert _store_traces(synced_store, [other["id"]])  # Bruno's order still names him
    # The orders themselves stay for the accounts, detached.
    for store, order in ((synced_store, lyon_order), (paris, paris_order)):
        db = dbmod.connect(dbmod.db_path(store))
        try:
            row = db.execute(
                "SELECT number, customer_name, customer_id FROM orders WHERE id = ?",
                [order["id"]],
            ).fetchone()
        finally:
            db.close()
        assert row == (order["number"], "", None)


def test_the_forgetting_job_leaves_no_name_in_a_store_once_orders_are_closed(store_db, monkeypatch):
    """Without any erasure: 30 days after its orders are closed and 60 after its card was
    last sent, a store holds nothing of a customer either (the same search)."""
    from app.core import clock

    from .order_helpers import apply_orders, order_data

    monkeypatch.setenv("KIOSK_FAKE_NOW", "2026-11-18T09:00:00Z")
    data = {
        **order_data(store_db, customer=f"{FIRST} {LAST}", email=EMAIL, status="cancelled"),
        "customer_id": "cus_ysolde",
    }
    apply_orders(store_db, [data])
    with dbmod.write(store_db):
        customer_cards.save_card(store_db, "crd_ysolde", "cus_ysolde", FIRST)
    forgetting.forget_due(store_db)
    path = Path(store_db.execute("PRAGMA database_list").fetchone()[2]).parent
    needles = [FIRST, LAST, EMAIL, "crd_ysolde", "cus_ysolde"]
    assert {t for t, _, _ in _store_traces(path, needles)} == {"orders", "customer_cards"}
    monkeypatch.setenv("KIOSK_FAKE_NOW", clock.iso(clock.parse_iso("2027-01-18T09:00:00Z")))
    forgetting.forget_due(store_db)
    assert _store_traces(path, needles) == []


# --- (b) the kiosk keeps nothing after the idle reset ----------------------------------

FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture
def card_hub(hub_data: Path):
    db = hub_db(hub_data)
    keys.ensure_hub_key(db, hub_data)
    yield db
    db.close()


def _card(store: Path, hub, hub_data: Path) -> tuple[str, str]:
    """A customer's card token and id; the store holds their first name for it."""
    ring = KeyRing.open(hub_data)
    customer, _ = customers.find_or_create(
        hub, ring, f"{secrets.token_hex(4)}@example.net", FIRST, LAST
    )
    token = cards.card_token(hub, hub_data, customer["id"])
    card_id = cards.current_card(hub, customer["id"])
    db = dbmod.connect(dbmod.db_path(store))
    try:
        with dbmod.write(db):
            customer_cards.save_card(db, card_id, customer["id"], FIRST)
    finally:
        db.close()
    return token, card_id


@pytest.fixture
def camera_browser(playwright):
    """Chromium with a fake camera the page may use without asking."""
    from .conftest import CHROMIUM, CHROMIUM_ARGS

    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + FAKE_CAMERA)
    yield b
    b.close()


def _session_of(store: Path, context) -> dict:
    """What the kiosk's session cookie holds, read with the store's own key."""
    from app.store.app import create_app

    app = create_app({"DATA_DIR": str(store)})
    name = app.config["SESSION_COOKIE_NAME"]
    held = [c["value"] for c in context.cookies() if c["name"] == name]
    serializer = app.session_interface.get_signing_serializer(app)
    return dict(serializer.loads(held[0])) if held else {}


def _storage(page) -> dict:
    """The keys of the page's localStorage and sessionStorage."""
    return page.evaluate(
        "() => ({local: Object.keys(localStorage).sort(),"
        " session: Object.keys(sessionStorage).sort()})"
    )


def test_the_kiosk_keeps_nothing_after_the_idle_reset_and_no_card_in_a_url(
    camera_browser, server_factory, synced_store, card_hub, hub_data
):
    token, card_id = _card(synced_store, card_hub, hub_data)
    other_token, _ = _card(synced_store, card_hub, hub_data)
    server = server_factory(
        synced_store,
        {
            **store_env(f"http://127.0.0.1:{free_port()}", hub_data),  # the hub is away
            "KIOSK_IDLE_SECONDS": "3",
            "KIOSK_IDLE_COUNTDOWN_SECONDS": "2",
        },
    )
    context = camera_browser.new_context(viewport={"width": 1080, "height": 1920}, locale="fr-FR")
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))

    # A card token in an address (a link, the history) is refused, never read.
    refused = page.goto(server.url + "/scan?code=" + other_token)
    assert refused.status == 400
    expect(page.locator(".card-problem")).to_have_attribute("data-problem", "in_url")
    expect(page.locator(".card-problem [role=alert]")).to_contain_text("adresse web")
    expect(page.locator(".recognised")).to_have_count(0)
    screenshot(page, "privacy-card-in-url-refused-1080x1920")

    # The scanner's burst: the card goes by POST, and the shopper is recognised.
    page.goto(server.url + "/browse")
    scan_card(page, token)
    expect(page.locator(".recognised")).to_contain_text("Bonjour")
    assert page.url == server.url + "/browse"
    assert not [u for u in urls if token in u]  # never in a URL the browser asked for
    assert _session_of(synced_store, context)["card"] == card_id  # until the idle reset

    # The camera page (a cart's QR): the fake camera streams into the page.
    page.goto(server.url + "/panier/scanner")
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-qr-camera] video');"
        " return v && v.srcObject && v.srcObject.getTracks().some(t => t.readyState === 'live'); }",
        timeout=10_000,
    )
    page.evaluate(
        """() => {
          sessionStorage.setItem('kiosk.keepScroll', '/browse|120|0');
          localStorage.setItem('kiosk.left', 'something');
        }"""
    )
    left = _storage(page)
    assert "kiosk.keepScroll" in left["session"] and left["local"] == ["kiosk.left"], left
    expect(page.locator(".recognised")).to_have_count(1)

    # Untouched: the question, then the reset the idle timer triggers. The reset form's
    # submit is wrapped to note what the page holds at that instant (after the reset
    # forgot what it forgets, before the page goes) and to go a moment later.
    page.evaluate(
        """() => {
          const form = document.getElementById('idle-reset');
          const submit = form.submit.bind(form);
          form.submit = () => {
            const v = document.querySelector('[data-qr-camera] video');
            const c = document.querySelector('[data-qr-camera] canvas');
            const s = v && v.srcObject;
            document.body.dataset.atReset = JSON.stringify({
              tracks: s ? s.getTracks().map(t => t.readyState) : [],
              frame: c ? c.width * c.height : 0,
              local: Object.keys(localStorage), session: Object.keys(sessionStorage),
            });
            setTimeout(submit, 1500);
          };
        }"""
    )
    expect(page.locator("#idle")).to_be_visible(timeout=10_000)
    screenshot(page, "privacy-idle-question-recognised-1080x1920")
    page.wait_for_function("() => document.body.dataset.atReset", timeout=10_000)
    at_reset = json.loads(page.evaluate("() => document.body.dataset.atReset"))
    assert at_reset["tracks"] and set(at_reset["tracks"]) == {"ended"}, at_reset  # stopped
    assert at_reset["frame"] == 0, at_reset  # no camera frame kept on the canvas
    assert at_reset["local"] == [] and at_reset["session"] == [], at_reset
    expect(page).to_have_url(re.compile(r":\d+/$"), timeout=10_000)
    page.wait_for_load_state("load")
    screenshot(page, "privacy-after-idle-reset-1080x1920")

    # Nothing is left: no card in the cookie, no storage, the camera stopped.
    held_session = _session_of(synced_store, context)
    assert "card" not in held_session, held_session
    assert card_id not in json.dumps(held_session)
    assert all(card_id not in c["value"] for c in context.cookies())
    assert _storage(page) == {"local": [], "session": []}
    page.goto(server.url + "/browse")
    expect(page.locator(".recognised")).to_have_count(0)
    log = server.log.read_text(errors="replace")
    assert token not in log and card_id not in log
    assert not [u for u in urls if token in u or card_id in u]
    context.close()
