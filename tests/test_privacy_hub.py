"""The hub's loose ends of privacy (issue 14): a consent withdrawn offline at a kiosk
ordered by when it was made; a signed-in visit to the web shop is a contact, an e-mail
is not; a return takes back the loyalty points its units earned. Both hub backends
(KIOSK_TEST_HUB_BACKEND=postgresql runs them on PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from app.core import clock
from app.hub import database as hdb
from app.hub.domain import cards, consent, customers, keys, loyalty
from app.hub.domain.orders import create_order
from app.hub.protocol import transactions
from app.hub.views import account, shop_visit

from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON
from .test_consent_loyalty import _apply, _collect, _customer, _log, _shopper, _skus, _tx, hub

pytestmark = pytest.mark.clock
__all__ = ["hub"]  # the fixture, shared with test_consent_loyalty

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


# --- consent withdrawn offline at a kiosk: when it was made counts ---------------------


def _withdrawal(card_id: str, occurred_at) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": "consent.revoked",
        "occurred_at": clock.iso(occurred_at),
        "payload": {"card_id": card_id},
    }


def _send(hub, hub_data, item) -> dict:
    [res] = transactions.apply_batch(hub, LYON, [item], data_dir=hub_data)
    assert res["status"] == "accepted", res
    return res["result"]


def test_consent_given_online_after_an_offline_kiosk_withdrawal_wins(hub, hub_data, fake_clock):
    customer = _customer(hub, hub_data)
    card_id = cards.issue_card(hub, customer)
    start = fake_clock.now
    consent.set_consent(hub, customer, True, "web", now=start - 3 * HOUR)
    consent.set_consent(hub, customer, False, "web", now=start - 150 * MINUTE)
    # The store, offline, still held the consent: the shopper withdrew it at its kiosk.
    tapped = start - 2 * HOUR
    # An hour later they gave it again online, before the store's withdrawal arrives.
    consent.set_consent(hub, customer, True, "web", now=start - HOUR)
    result = _send(hub, hub_data, _withdrawal(card_id, tapped))
    assert result == {"applied": False, "superseded": True}
    assert consent.personal_allowed(hub, customer) is True  # the later choice stands
    assert _log(hub, customer) == [(1, "web", None), (0, "web", None), (1, "web", None)]


def test_consent_given_online_before_an_offline_kiosk_withdrawal_loses(hub, hub_data, fake_clock):
    customer = _customer(hub, hub_data)
    card_id = cards.issue_card(hub, customer)
    start = fake_clock.now
    consent.set_consent(hub, customer, True, "web", now=start - 3 * HOUR)
    tapped = start - 2 * HOUR
    result = _send(hub, hub_data, _withdrawal(card_id, tapped))
    assert result == {"applied": True, "changed": True}
    assert consent.personal_allowed(hub, customer) is False
    # Journaled when the shopper tapped, not when the store's message arrived.
    [last] = consent.history(hub, customer)[:1]
    assert (last["given"], last["channel"], last["store_id"]) == (0, "kiosk", LYON)
    assert last["at"] == clock.iso(tapped)
    row = hdb.one(hub, "SELECT consent_at FROM customers WHERE id = ?", [customer])
    assert row["consent_at"] == clock.iso(tapped)
    # A consent given online afterwards is then honoured as usual.
    consent.set_consent(hub, customer, True, "web", now=start)
    assert consent.personal_allowed(hub, customer) is True


# --- a signed-in visit is a contact; an e-mail opened is not ---------------------------


def _last_contact(hub, customer_id: str) -> str:
    return hdb.scalar(hub, "SELECT last_contact_at FROM customers WHERE id = ?", [customer_id])


def _writes(hub, customer_id: str, at: str) -> None:
    with hdb.write(hub):
        hdb.execute(hub, "UPDATE customers SET last_contact_at = ? WHERE id = ?", [at, customer_id])


def test_a_signed_in_visit_moves_the_last_contact_once_a_day(hub, hub_data, fake_clock):
    assert shop_visit.SESSION_KEY == account.SESSION_KEY
    customer = _customer(hub, hub_data)
    long_ago = fake_clock.now - timedelta(days=700)
    _writes(hub, customer, clock.iso(long_ago))
    # Not signed in: a visit of the shop names nobody and moves nothing.
    anonymous = _shopper(hub_data, hub, customer)
    with anonymous.session_transaction() as s:
        s.pop("customer")
    assert anonymous.get("/shop/").status_code == 200
    assert _last_contact(hub, customer) == clock.iso(long_ago)
    # An e-mail sent and opened is no contact: only a visit or an order is.
    shop = _shopper(hub_data, hub, customer)
    assert _last_contact(hub, customer) == clock.iso(long_ago)
    # Any page of the shop, signed in: the retention clock starts again now.
    assert shop.get("/shop/").status_code == 200
    assert _last_contact(hub, customer) == clock.iso(fake_clock.now)
    # Later the same day: no second write (a marker shows whether one happened).
    marker = clock.iso(fake_clock.now + timedelta(seconds=1))
    _writes(hub, customer, marker)
    fake_clock.advance(3600)
    assert shop.get("/shop/panier").status_code in (200, 302)
    assert _last_contact(hub, customer) == marker
    # The next day, one write again.
    fake_clock.advance(24 * 3600)
    shop.get("/shop/")
    assert _last_contact(hub, customer) == clock.iso(fake_clock.now)


# --- a return takes back the points it earned -----------------------------------------


def _return(hub, hub_data, order_id: str, lines: list[tuple[int, int]], return_id=None):
    skus = {
        r["line"]: r["sku"]
        for r in hdb.rows(hub, "SELECT line, sku FROM order_lines WHERE order_id = ?", [order_id])
    }
    payload = {
        "return_id": return_id or str(uuid.uuid4()),
        "order_id": order_id,
        "lines": [
            {"line": line, "sku": skus[line], "qty": qty, "condition": "resellable"}
            for line, qty in lines
        ],
        "reason": "trop petit",
        "refund": "original_payment",
        "staff": "sf-1",
    }
    return _apply(hub, hub_data, _tx("order.return", payload)), payload["return_id"]


def test_a_return_takes_back_the_points_its_lines_earned_once_never_below_zero(hub, hub_data):
    customer = _customer(hub, hub_data)
    key = keys.current_private_key(hub_data)
    sku_a, sku_b = _skus(hub)
    order = create_order(
        hub,
        LYON,
        "Chloé Martin",
        "c@example.com",
        [{"sku": sku_a, "qty": 2}, {"sku": sku_b, "qty": 1}],
        private_key=key,
    )["order"]["id"]
    customers.claim_order(hub, customer, order)
    loyalty.set_rules(hub, {"points_per_euro": 3, "block_points": 10, "block_cents": 500})
    _collect(hub, hub_data, order)
    earned = loyalty.balance(hub, customer)
    assert earned == loyalty.collected_cents(hub, order) * 3 // 100 > 0
    # One unit of line 1 comes back: the points that unit earned go.
    one = loyalty.returned_cents(hub, order, [{"line": 1, "qty": 1}])
    expect = earned * one // loyalty.collected_cents(hub, order)
    _, first_id = _return(hub, hub_data, order, [(1, 1)])
    assert loyalty.balance(hub, customer) == earned - expect
    # The same return sent again (a replay, another transaction id): taken once.
    _return(hub, hub_data, order, [(1, 1)], return_id=first_id)
    assert loyalty.balance(hub, customer) == earned - expect
    assert loyalty.order_returned(hub, order, first_id, [{"line": 1, "qty": 1}]) == 0
    rows = hdb.rows(
        hub,
        "SELECT points, return_id FROM loyalty_ledger WHERE kind = 'returned' AND order_id = ?",
        [order],
    )
    assert rows == [{"points": -expect, "return_id": first_id}]
    # Points spent meanwhile stay spent: the balance never goes below zero.
    conversion = loyalty.convert(hub, customer)
    left = loyalty.balance(hub, customer)
    assert left == earned - expect - conversion.points
    _return(hub, hub_data, order, [(1, 1), (2, 1)])
    assert loyalty.balance(hub, customer) == 0
    taken = -sum(
        r["points"]
        for r in hdb.rows(
            hub,
            "SELECT points FROM loyalty_ledger WHERE kind = 'returned' AND order_id = ?",
            [order],
        )
    )
    assert taken == expect + left <= earned
    # A guest's order returned takes nothing from anybody.
    guest = create_order(
        hub, LYON, "Paul", "p@example.com", [{"sku": sku_a, "qty": 1}], private_key=key
    )["order"]["id"]
    _collect(hub, hub_data, guest)
    _return(hub, hub_data, guest, [(1, 1)])
    assert hdb.rows(hub, "SELECT 1 AS x FROM loyalty_ledger WHERE order_id = ?", [guest]) == []


def test_points_earned_are_all_taken_back_when_everything_comes_back(hub, hub_data):
    customer = _customer(hub, hub_data)
    key = keys.current_private_key(hub_data)
    sku_a, sku_b = _skus(hub)
    order = create_order(
        hub,
        LYON,
        "Chloé Martin",
        "c@example.com",
        [{"sku": sku_a, "qty": 2}, {"sku": sku_b, "qty": 1}],
        private_key=key,
    )["order"]["id"]
    customers.claim_order(hub, customer, order)
    _collect(hub, hub_data, order)
    earned = loyalty.balance(hub, customer)
    assert earned > 0
    _return(hub, hub_data, order, [(1, 1)])
    _return(hub, hub_data, order, [(1, 1), (2, 1)])
    assert loyalty.balance(hub, customer) == 0  # all of it, rounding included
