"""A shopper is recognised at ANY store, not only where they have an order (issue 14).

A consenting customer with an order at Lyon only walks into Paris and scans « Ma carte »:
the Paris kiosk verifies the card offline, asks the hub (``POST /api/v1/cards/lookup``,
app/store/domain/card_lookup.py, app/store/sync/card_fetch.py) and greets them by name
with « Pour vous » and their points; the hub now counts Paris among their stores
(app/hub/domain/card_lookups.py), so a consent withdrawn online and an erasure reach
Paris through its feed. The hub down, slow, or not knowing the card: the shopper is
recognised anonymously, at once. A real hub and a real store server; hub parts on the
backend of the pass (``make test`` runs SQLite then PostgreSQL).
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from app.core import clock, tokens
from app.core import db as dbmod
from app.hub import database as hdb
from app.hub.domain import card_lookups, cards, consent, customer_feed, erasure, keys
from app.hub.domain.pii import KeyRing
from app.store.domain import card_lookup, customer_cards
from app.store.migrations import migrate
from app.store.sync import card_fetch, state
from app.store.sync import client as store_client
from app.store.sync.pull import pull_once

from .conftest import free_port, screenshot
from .hub_fixtures import HubClient, store_secrets, validate
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, PARIS, hub_db, inprocess_client, store_env, wait_for
from .test_customer_card import _payload
from .test_personal_hub import _catalog, _csrf, _customer, _order, _shopper

pytestmark = pytest.mark.hub

NBSP = "\u00a0"
NNBSP = "\u202f"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ANONYMOUS = f"Bonjour{NBSP}! Vous êtes reconnu(e)"


@pytest.fixture
def hub(hub_data: Path):
    db = hub_db(hub_data)
    keys.ensure_hub_key(db, hub_data)
    yield db
    db.close()


def _store(tmp_path: Path, hub_data: Path, store_id: str = PARIS) -> Path:
    """A store's data directory after its first sync (as ``store_id``)."""
    data = tmp_path / f"store-{store_id}"
    data.mkdir()
    db = dbmod.connect(dbmod.db_path(data))
    try:
        migrate(db)
        hub_client, _ = inprocess_client(hub_data, store_id)
        pull_once(db, hub_client, own_store_id=store_id)
    finally:
        db.close()
    return data


def _link_up(store: Path) -> None:
    """Wait until the store's own sync worker has reached the hub: a kiosk asks the hub
    about a card only while its link is up (a kiosk just started has not synced yet)."""

    def up() -> bool:
        db = dbmod.connect(dbmod.db_path(store))
        try:
            return state.is_online(db)
        finally:
            db.close()

    wait_for(up, 30, "the store's link to the hub")


def _card_row(store: Path, card_id: str) -> tuple | None:
    db = dbmod.connect(dbmod.db_path(store))
    try:
        row = db.execute(
            "SELECT customer_id, first_name, points, personal FROM customer_cards "
            "WHERE card_id = ?",
            [card_id],
        ).fetchone()
        return tuple(row) if row else None
    finally:
        db.close()


def _in_stock_at_paris_elsewhere(hub, category_id: int) -> dict:
    """A product in stock at Paris, outside ``category_id`` (no usual size to match)."""
    return hdb.one(
        hub,
        "SELECT p.pk, p.ref, p.name_fr FROM products p JOIN variants v ON v.product_pk = p.pk "
        "JOIN stock_levels s ON s.sku = v.sku AND s.store_id = ? AND s.qty >= 3 "
        "WHERE p.category_id <> ? ORDER BY p.pk LIMIT 1",
        [PARIS, category_id],
    )


def _scan(http: requests.Session, base_url: str, token: str) -> tuple[requests.Response, float]:
    """POST the card as the kiosk does; the page answered and how long the POST took."""
    html = http.get(base_url + "/browse", timeout=10).text
    csrf = _CSRF.search(html).group(1)
    started = time.monotonic()
    answer = http.post(base_url + "/scan", data={"csrf_token": csrf, "code": token}, timeout=10)
    return answer, time.monotonic() - started


def _greeting(html: str) -> str:
    found = re.search(r'<p class="recognised-hello"[^>]*>(.*?)</p>', html, re.S)
    assert found, "no greeting on the page"
    return re.sub(r"<[^>]+>|✓", "", found.group(1)).strip()


def test_a_walk_in_shopper_is_recognised_by_name_then_withdrawal_and_erasure_reach_the_store(
    hub, hub_data, hub_factory, server_factory, tmp_path
):
    ring = KeyRing.open(hub_data)
    p = _catalog(hub)
    customer = _customer(hub, hub_data)
    token = cards.card_token(hub, hub_data, customer)
    card_id = _payload(token)["c"]
    _order(hub, hub_data, [p["a"]["sku"]], customer)  # at Lyon only
    seen = _in_stock_at_paris_elsewhere(hub, p["a"]["category_id"])
    with hdb.write(hub):
        hdb.execute(hub, "UPDATE customers SET loyalty_points = 1250 WHERE id = ?", [customer])
        hdb.insert(
            hub,
            "customer_product_views",
            {"customer_id": customer, "product_pk": seen["pk"], "viewed_at": clock.now_iso()},
        )
    assert consent.set_consent(hub, customer, True, "web")
    customer_feed.personal_changed(hub, ring, customer)
    assert customer_feed.stores_of(hub, customer) == [LYON]

    server = hub_factory(hub_data)
    paris = _store(tmp_path, hub_data)
    assert _card_row(paris, card_id) is None  # Paris was never sent the card
    kiosk = server_factory(paris, store_env(server.url, hub_data, PARIS))
    _link_up(paris)
    http = requests.Session()
    answer, took = _scan(http, kiosk.url, token)
    assert answer.status_code == 200
    assert _greeting(answer.text) == f"Bonjour Chloé{NBSP}! Vous êtes reconnu(e)"
    assert f'id="loyalty-points">1{NNBSP}250 points fidélité<' in answer.text
    assert 'id="for-you"' in answer.text and "Pour vous, Chloé" in answer.text
    assert seen["ref"] in answer.text or seen["name_fr"] in answer.text
    assert took < 3, f"the scan took {took:.2f} s"
    # Paris holds the card as the feed would have sent it, and counts among the stores.
    customer_id, first, points, personal = _card_row(paris, card_id)
    assert (customer_id, first, points) == (customer, "Chloé", 1250)
    assert json.loads(personal)["recent"][0] == seen["ref"]
    assert customer_feed.stores_of(hub, customer) == sorted([LYON, PARIS])
    assert hdb.rows(
        hub, "SELECT store_id FROM customer_card_stores WHERE customer_id = ?", [customer]
    ) == [{"store_id": PARIS}]
    # Nothing of the card id in the store's log.
    assert card_id not in kiosk.log.read_text()

    # Consent withdrawn online (« Mon compte »): Paris learns it through its feed.
    shop = _shopper(hub_data, hub, customer)
    csrf = _csrf(shop.get("/shop/compte").get_data(as_text=True))
    withdrawn = shop.post(
        "/shop/compte/suggestions", data={"csrf_token": csrf, "action": "withdraw"}
    )
    assert withdrawn.status_code == 302
    wait_for(lambda: _card_row(paris, card_id)[3] is None, 30, "the withdrawal at Paris")
    page = http.get(kiosk.url + "/browse", timeout=10).text
    assert _greeting(page) == f"Bonjour Chloé{NBSP}! Vous êtes reconnu(e)"
    assert 'id="for-you"' not in page

    # Erased: Paris forgets the card; the shopper still in front of it is anonymous.
    assert erasure.erase_customer(hub, ring, customer) is not None
    wait_for(lambda: _card_row(paris, card_id) is None, 30, "the erasure at Paris")
    page = http.get(kiosk.url + "/browse", timeout=10).text
    assert _greeting(page) == ANONYMOUS
    assert "Chloé" not in page and "loyalty-points" not in page
    assert hdb.rows(hub, "SELECT * FROM customer_card_stores") == []
    # Scanned again: the hub knows no such card any more (revoked with the account).
    answer, took = _scan(http, kiosk.url, token)
    assert _greeting(answer.text) == ANONYMOUS and took < 3
    assert _card_row(paris, card_id) is None


@pytest.mark.browser
@pytest.mark.parametrize("size", [(1080, 1920), (1920, 1080)], ids=["portrait", "landscape"])
def test_a_walk_in_shopper_seen_on_the_kiosk(
    hub, hub_data, hub_factory, server_factory, tmp_path, browser, size
):
    """A card scanned at a Paris kiosk (order at Lyon only): greeted by name, points and
    « Pour vous » on the browse page, at both kiosk sizes."""
    ring = KeyRing.open(hub_data)
    p = _catalog(hub)
    customer = _customer(hub, hub_data)
    token = cards.card_token(hub, hub_data, customer)
    _order(hub, hub_data, [p["a"]["sku"]], customer)
    seen = _in_stock_at_paris_elsewhere(hub, p["a"]["category_id"])
    with hdb.write(hub):
        hdb.execute(hub, "UPDATE customers SET loyalty_points = 1250 WHERE id = ?", [customer])
        hdb.insert(
            hub,
            "customer_product_views",
            {"customer_id": customer, "product_pk": seen["pk"], "viewed_at": clock.now_iso()},
        )
    consent.set_consent(hub, customer, True, "web")
    customer_feed.personal_changed(hub, ring, customer)
    server = hub_factory(hub_data)
    paris = _store(tmp_path, hub_data)
    kiosk = server_factory(paris, store_env(server.url, hub_data, PARIS))
    _link_up(paris)
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="fr-FR")
    try:
        page = context.new_page()
        page.goto(kiosk.url + "/browse")
        # The card posted as the kiosk's script does (the scanner's burst itself is
        # tested with the kiosk: tests/test_customer_card.py), in this page's session.
        csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
        posted = page.request.post(kiosk.url + "/scan", form={"csrf_token": csrf, "code": token})
        assert posted.ok
        page.goto(kiosk.url + "/browse")
        expect(page.locator(".recognised-hello")).to_contain_text(f"Bonjour Chloé{NBSP}!")
        expect(page.locator("#loyalty-points")).to_have_text(f"1{NNBSP}250 points fidélité")
        expect(page.locator("#for-you-title")).to_have_text("Pour vous, Chloé")
        expect(page.locator("#for-you")).to_contain_text(seen["name_fr"])
        screenshot(page, f"kiosk-walk-in-recognised-{size[0]}x{size[1]}")
    finally:
        context.close()


def test_hub_down_revoked_or_unknown_card_leaves_the_shopper_anonymous_and_fast(
    hub, hub_data, hub_factory, server_factory, tmp_path
):
    customer = _customer(hub, hub_data)
    revoked = cards.card_token(hub, hub_data, customer)
    cards.rotate_card(hub, customer)  # the old id names nobody any more
    live = cards.card_token(hub, hub_data, customer)
    private_key, kid = keys.ensure_hub_key(hub, hub_data)
    unknown = tokens.mint(
        private_key, "card", {"c": secrets.token_urlsafe(16)}, 600, kid=kid
    )  # signed by the hub, naming no card it issued
    server = hub_factory(hub_data)
    paris = _store(tmp_path, hub_data)
    kiosk = server_factory(paris, store_env(server.url, hub_data, PARIS))
    _link_up(paris)  # the hub is asked, and says it knows no such card
    http = requests.Session()
    for token in (revoked, unknown):
        answer, took = _scan(http, kiosk.url, token)
        assert answer.status_code == 200
        assert _greeting(answer.text) == ANONYMOUS
        assert took < 3
        assert _card_row(paris, _payload(token)["c"]) is None

    # The hub stops answering: the live card is recognised, anonymously, without waiting.
    server.stop()
    answer, took = _scan(http, kiosk.url, live)
    assert answer.status_code == 200
    assert _greeting(answer.text) == ANONYMOUS
    assert took < 2, f"the scan took {took:.2f} s with the hub down"
    assert _card_row(paris, _payload(live)["c"]) is None


def test_a_silent_hub_is_given_up_within_the_kiosk_budget(store_db):
    """A hub that accepts the connection and never answers: the look-up gives up within
    0.8 s (plus scheduling slack) and the shopper stays anonymous."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)  # kept open, never answered
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        silent = store_client.HubClient(f"http://127.0.0.1:{port}", PARIS, "secret")
        card_id = secrets.token_urlsafe(16)
        started = time.monotonic()
        learnt = card_lookup.learn(store_db, card_id, lambda cid: card_fetch.look_up(silent, cid))
        took = time.monotonic() - started
        assert learnt is None
        assert card_fetch.CONNECT_TIMEOUT_S + card_fetch.READ_TIMEOUT_S <= 0.8
        assert took < 0.8 + 0.4  # the budget, plus scheduling slack on a busy machine
        assert customer_cards.first_name(store_db, card_id) is None
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


def test_the_kiosk_asks_only_while_the_link_is_up(store_db):
    """No hub configured, or a link known to be down: no question at all."""
    asked: list[str] = []
    fake = store_client.HubClient(f"http://127.0.0.1:{free_port()}", PARIS, "secret")
    assert card_fetch.asker(store_db, None) is None
    assert card_fetch.asker(store_db, fake) is None  # never synced: offline
    state.record_success(store_db)
    assert card_fetch.asker(store_db, fake) is not None
    state.record_failure(store_db, "pull: down")
    assert card_fetch.asker(store_db, fake) is None
    # A card already held is never asked about.
    customer_cards.save_card(store_db, "held-card", "cus-1", "Chloé")
    assert card_lookup.learn(store_db, "held-card", lambda cid: asked.append(cid)) is None
    assert asked == []


def _post(signer: HubClient, body: bytes) -> requests.Response:
    return signer.request("POST", "/api/v1/cards/lookup", body, timeout=10)


def test_lookup_api_answers_a_live_card_404s_the_rest_and_refuses_bad_bodies(
    hub, hub_data, hub_factory
):
    ring = KeyRing.open(hub_data)
    customer = _customer(hub, hub_data)
    token = cards.card_token(hub, hub_data, customer)
    card_id = _payload(token)["c"]
    server = hub_factory(hub_data)
    paris = HubClient(server.url, PARIS, store_secrets(hub_data)[PARIS])

    found = _post(paris, json.dumps({"card_id": card_id}).encode())
    assert found.status_code == 200
    card = found.json()["card"]
    assert card == customer_feed.card_data(hub, ring, customer)
    assert card["first_name"] == "Chloé" and card["personal"] is None  # no consent
    validate(
        {"seq": 1, "kind": "customer_card", "key": customer, "data": card},
        "CustomerCardChange",
    )
    # The store now holds it: the answer is in its feed too.
    [change] = hdb.rows(
        hub,
        "SELECT data FROM changes WHERE kind = 'customer_card' AND key = ? AND store_id = ?",
        [customer, PARIS],
    )
    assert json.loads(change["data"]) == card

    # Revoked and never issued alike: 404, the same body.
    cards.rotate_card(hub, customer)
    gone = _post(paris, json.dumps({"card_id": card_id}).encode())
    never = _post(paris, json.dumps({"card_id": secrets.token_urlsafe(16)}).encode())
    assert gone.status_code == never.status_code == 404
    assert gone.json() == never.json() == {"error": "unknown_card", "message": "no such card"}

    bad = [
        b"not json",
        b"[]",
        b'"x"',
        b"{}",
        json.dumps({"card_id": 5}).encode(),
        json.dumps({"card_id": ""}).encode(),
        json.dumps({"card_id": "x" * 65}).encode(),
        json.dumps({"card_id": "a b/../c"}).encode(),
        json.dumps({"card_id": "é"}).encode(),
        json.dumps({"card_id": None}).encode(),
        json.dumps({"card_id": "abc", "more": 1}).encode(),
        b'{"card_id": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ]
    for body in bad:
        answer = _post(paris, body)
        assert 400 <= answer.status_code < 500, (body[:40], answer.status_code)
        assert answer.headers["Content-Type"].startswith("application/json")
        assert answer.json()["error"] in ("bad_request", "too_large")
    unsigned = requests.post(
        server.url + "/api/v1/cards/lookup", json={"card_id": card_id}, timeout=10
    )
    assert unsigned.status_code == 401


def test_lookups_are_rate_limited_per_store(hub, hub_data):
    from app.hub.app import create_hub_app

    from .sync_fixtures import WSGITransport, hub_database

    app = create_hub_app(
        {
            "DATA_DIR": str(hub_data),
            "DATABASE": hub_database(hub_data),
            "TESTING": True,
            "CARD_LOOKUPS_PER_MINUTE": 3,
        }
    )
    session = requests.Session()
    session.mount("http://", WSGITransport(app))

    def client_for(store_id: str) -> store_client.HubClient:
        secret = store_secrets(hub_data)[store_id]
        return store_client.HubClient("http://hub.test", store_id, secret, session=session)

    paris, lyon = client_for(PARIS), client_for(LYON)
    for _ in range(3):
        with pytest.raises(store_client.HubError) as missed:
            paris.request("POST", "/api/v1/cards/lookup", {"card_id": secrets.token_urlsafe(16)})
        assert missed.value.status == 404
    with pytest.raises(store_client.HubError) as limited:
        paris.request("POST", "/api/v1/cards/lookup", {"card_id": secrets.token_urlsafe(16)})
    assert limited.value.status == 429 and limited.value.code == "rate_limited"
    assert limited.value.retry_after and limited.value.retry_after >= 1
    # Another store has its own budget.
    with pytest.raises(store_client.HubError) as other:
        lyon.request("POST", "/api/v1/cards/lookup", {"card_id": secrets.token_urlsafe(16)})
    assert other.value.status == 404


def test_an_answer_lost_on_the_way_comes_through_the_feed(hub, hub_data, tmp_path):
    """The kiosk gave up waiting (a slow hub) but the hub answered: the store's feed
    brings the card anyway, so the shopper is named on the next page."""
    ring = KeyRing.open(hub_data)
    customer = _customer(hub, hub_data)
    card_id = _payload(cards.card_token(hub, hub_data, customer))["c"]
    paris = _store(tmp_path, hub_data)
    assert _card_row(paris, card_id) is None
    assert card_lookups.look_up(hub, ring, PARIS, card_id)["first_name"] == "Chloé"
    db = dbmod.connect(dbmod.db_path(paris))
    try:
        hub_client, _ = inprocess_client(hub_data, PARIS)
        pull_once(db, hub_client, own_store_id=PARIS)
    finally:
        db.close()
    assert _card_row(paris, card_id)[:2] == (customer, "Chloé")
    # Past 60 days the look-up no longer counts: Paris is not sent the customer's news.
    assert PARIS in customer_feed.stores_of(hub, customer)
    with hdb.write(hub):
        hdb.execute(
            hub,
            "UPDATE customer_card_stores SET looked_up_at = ? WHERE customer_id = ?",
            ["2000-01-01T00:00:00Z", customer],
        )
    assert PARIS not in customer_feed.stores_of(hub, customer)
    assert card_lookups.look_up(hub, ring, LYON, "not a card id") is None
