"""Loyalty across channels, seen at the kiosk (issue 14): the balance earned online and
in store travels with the customer's card to the stores holding it, and a recognised
shopper sees it at the kiosk; spending points online (store credit) moves it there too.
"""

from __future__ import annotations

import itertools
import json

import pytest
import requests

from app.core import db as dbmod
from app.hub import database as hdb
from app.hub.domain import cards, customers, keys, loyalty
from app.hub.domain.orders import create_order
from app.hub.domain.pii import KeyRing
from app.store.domain import customer_cards
from app.store.sync import feed

from .card_scan import post_card
from .conftest import free_port
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, hub_db, store_env
from .test_consent_loyalty import _CSRF, _collect, _csrf, _shopper, _skus
from .test_customer_card import _payload

NNBSP = "\u202f"

pytestmark = pytest.mark.hub


@pytest.fixture
def hub(hub_data):
    db = hub_db(hub_data)
    keys.ensure_hub_key(db, hub_data)
    yield db
    db.close()


def _card_changes(hub, customer_id: str, store_id: str = LYON) -> list[dict]:
    rows = hdb.rows(
        hub,
        "SELECT data FROM changes WHERE kind = 'customer_card' AND key = ? AND store_id = ? "
        "ORDER BY seq",
        [customer_id, store_id],
    )
    return [json.loads(r["data"]) for r in rows]


def test_points_reach_the_stores_holding_the_card_and_follow_credit(hub, hub_data):
    row, _ = customers.find_or_create(
        hub, KeyRing.open(hub_data), "chloe.points@example.com", "Chloé", "Martin"
    )
    customer = row["id"]
    cards.issue_card(hub, customer)
    [sku] = _skus(hub, 1)
    order = create_order(
        hub,
        LYON,
        "Chloé Martin",
        "chloe.points@example.com",
        [{"sku": sku, "qty": 3}],
        private_key=keys.current_private_key(hub_data),
    )["order"]["id"]
    customers.claim_order(hub, customer, order)
    loyalty.set_rules(hub, {"points_per_euro": 1, "block_points": 10, "block_cents": 500})

    _collect(hub, hub_data, order)  # handed over in full at Lyon: points earned
    earned = loyalty.balance(hub, customer)
    assert earned > 10
    assert _card_changes(hub, customer)[-1]["points"] == earned

    # Spent online as store credit: Lyon's kiosk learns the new balance.
    shop = _shopper(hub_data, hub, customer)
    html = shop.get("/shop/compte").get_data(as_text=True)
    assert (
        shop.post("/shop/compte/points/avoir", data={"csrf_token": _csrf(html)}).status_code == 302
    )
    left = loyalty.balance(hub, customer)
    assert left == earned % 10
    assert _card_changes(hub, customer)[-1]["points"] == left


_seq = itertools.count(1)


def _send(db, **data) -> dict:
    seq = next(_seq)
    change = {"seq": seq, "kind": "customer_card", "key": data["customer_id"], "data": data}
    return feed.apply_page(db, {"changes": [change], "cursor": seq, "remaining": 0}, None)


@pytest.mark.parametrize("bad", ["12", -1, 1.5, True, 10**12, None])
def test_a_store_keeps_a_whole_balance_only(store_db, bad):
    card = {"customer_id": "cus_1", "card_id": "crd_1", "first_name": "Chloé", "personal": None}
    assert _send(store_db, **card, points=42)["failed"] == 0
    assert customer_cards.points(store_db, "crd_1") == 42
    # Anything else (an older hub sends none) leaves no balance, the card still applied.
    assert _send(store_db, **card, points=bad)["failed"] == 0
    assert customer_cards.points(store_db, "crd_1") is None
    assert customer_cards.first_name(store_db, "crd_1") == "Chloé"


def test_a_recognised_shopper_sees_their_points_at_the_kiosk(
    server_factory, synced_store, hub, hub_data
):
    row, _ = customers.find_or_create(
        hub, KeyRing.open(hub_data), "chloe.kiosk@example.com", "Chloé", "Martin"
    )
    token = cards.card_token(hub, hub_data, row["id"])
    card_id = _payload(token)["c"]
    db = dbmod.connect(dbmod.db_path(synced_store))
    try:
        _send(db, customer_id=row["id"], card_id=card_id, first_name="Chloé", points=1250)
    finally:
        db.close()
    server = server_factory(synced_store, store_env(f"http://127.0.0.1:{free_port()}", hub_data))
    http = requests.Session()
    assert 'id="loyalty-points"' not in http.get(server.url + "/browse", timeout=10).text
    page = post_card(http, server.url, token).text
    assert f'id="loyalty-points">1{NNBSP}250 points fidélité<' in page
    csrf = _CSRF.search(page).group(1)
    http.post(server.url + "/lang", data={"csrf_token": csrf, "lang": "en"}, timeout=10)
    english = http.get(server.url + "/browse", timeout=10).text
    assert 'id="loyalty-points">1,250 loyalty points<' in english
