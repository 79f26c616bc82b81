"""A store holds only what its counter needs, and forgets it (issue 14, RGPD).

The first name only of an order's customer (never the surname or the e-mail, even from
an older hub that sends them), forgotten FORGET_ORDER_NAME_DAYS after the order is
closed; an order request's e-mail once the hub has it; a card the feed has not sent
for FORGET_CARD_DAYS. Each limit is tried one second before and one second after, on
the frozen clock.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod
from app.core.protocol import ORDER_REQUEST
from app.store.domain import customer_cards, forgetting, outbox
from app.store.domain.acks import ACK_HOOKS
from app.store.domain.order_requests import check_customer, queue_order_request
from app.store.domain.orders import expiry, pickup, preparation, queries, returns
from app.store.domain.orders.status import OrderError
from app.store.migrations import store_migrations

from .conftest import add_staff_member
from .order_helpers import add_order, apply_orders, order_data

pytestmark = pytest.mark.clock

NOW = "2026-11-18T09:00:00Z"
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


@pytest.fixture
def now(monkeypatch):
    monkeypatch.setenv("KIOSK_FAKE_NOW", NOW)
    return clock.utcnow()


@pytest.fixture
def staff(store_data):
    return add_staff_member(store_data, "Camille")


def _at(monkeypatch, instant) -> None:
    monkeypatch.setenv("KIOSK_FAKE_NOW", clock.iso(instant))


def _collect(db, data, staff, *, collector="customer", name=""):
    for ln in data["lines"]:
        for _ in range(ln["qty"]):
            preparation.scan_item(db, data["id"], ln["ean"], staff["id"])
    preparation.mark_ready(db, data["id"], "A1", staff["id"])
    pickup.handover(
        db,
        data["id"],
        staff_id=staff["id"],
        method="qr",
        collector=collector,
        collector_name=name,
    )


def _add(db, customer_id: str, **kwargs):
    """An order of an account (the hub's ``customer_id``) applied through the feed."""
    data = {**order_data(db, **kwargs), "customer_id": customer_id}
    apply_orders(db, [data])
    return data


def _order(db, order_id):
    return queries.get_order(db, order_id, lines=False)


def test_the_store_keeps_the_first_name_only_even_from_an_older_hub(store_db, now):
    # An older hub sends the whole name and the e-mail: the store keeps the first word.
    data = add_order(store_db, customer="  Élodie   Martin-Durand ", email="E.Martin@example.org")
    order = _order(store_db, data["id"])
    assert order["customer_name"] == "Élodie"
    assert order["customer_email"] == ""
    assert order["customer_key"] == "elodie"
    assert order["customer_initials"] == "É."
    assert "Martin" not in json.dumps(order) and "example.org" not in json.dumps(order)
    # The counter still finds it: by number, by first name; never by surname or e-mail.
    assert queries.find_by_number(store_db, data["number"])["id"] == data["id"]
    assert [o["id"] for o in queries.search(store_db, "élodie")] == [data["id"]]
    assert queries.search(store_db, "Martin") == []
    # A hub that sends the first name alone (the current one) is kept as is.
    only = add_order(store_db, customer="Inès", email="")
    assert _order(store_db, only["id"])["customer_name"] == "Inès"


def test_a_return_is_found_by_number_and_first_name_not_by_email(store_db, now, staff):
    data = add_order(store_db, customer="Élodie Martin", qtys=[1, 1])
    _collect(store_db, data, staff)
    assert returns.find_for_return(store_db, number=data["number"], first_name="elodie")
    for who in ("Martin", "e.martin@example.org", "Eloise"):
        with pytest.raises(OrderError) as exc:
            returns.find_for_return(store_db, number=data["number"], first_name=who)
        assert exc.value.code == "details_mismatch"


def test_migration_reduces_names_and_blanks_emails_already_held(tmp_path):
    db = Database(str(tmp_path / "old.db"))
    store_migrations.apply(db, stop_before="m016_store_forget")
    row = {
        "number": "CC-1",
        "customer_name": "Jean-Marc Dupont",
        "customer_key": "jean-marc dupont",
        "customer_email": "jm@example.org",
        "customer_initials": "J. D.",
        "placed_at": "2026-01-01T10:00:00Z",
        "promised_at": "2026-01-01T12:00:00Z",
        "updated_at": "2026-01-03T10:00:00Z",
    }
    db["orders"].insert({"id": "o-1", "status": "collected", **row})
    db["orders"].insert({"id": "o-2", "status": "ready", **row, "number": "CC-2"})
    store_migrations.apply(db)
    rows = {r["id"]: r for r in db.execute_returning_dicts("SELECT * FROM orders")}
    for r in rows.values():
        assert (r["customer_name"], r["customer_key"], r["customer_email"]) == (
            "Jean-Marc",
            "jean-marc",
            "",
        )
        assert r["customer_initials"] == "J."
        assert r["forgotten_at"] is None
    # A closed order counts from when it was last touched; an open one is not closed.
    assert rows["o-1"]["closed_at"] == "2026-01-03T10:00:00Z"
    assert rows["o-2"]["closed_at"] is None
    db.close()


@pytest.mark.parametrize("how", ["collected", "expired", "cancelled"])
def test_a_closed_order_keeps_its_first_name_30_days_then_forgets_it(
    store_db, now, staff, monkeypatch, how
):
    assert forgetting.FORGET_ORDER_NAME_DAYS == 30
    data = _add(store_db, "cus_elodie", customer="Élodie Martin")
    if how == "collected":
        _collect(store_db, data, staff, collector="proxy", name="Paul Proxy")
    elif how == "cancelled":
        apply_orders(store_db, [{**data, "status": "cancelled", "revision": 2}])
    else:
        apply_orders(store_db, [{**data, "status": "ready", "revision": 2}])
        _at(monkeypatch, now + 60 * DAY)
        assert expiry.expire_due(store_db)["expired"] == [data["id"]]
    closed = clock.utcnow()
    for (tx_id,) in store_db.execute("SELECT id FROM outbox WHERE acked_at IS NULL").fetchall():
        outbox.mark_acked(store_db, tx_id, {}, hooks=ACK_HOOKS)  # the hub has them all
    # An order still open is never forgotten, however old.
    other = add_order(store_db, customer="Inès Roux", placed_at=now - 400 * DAY)
    assert forgetting.forget_due(store_db)["closed"] == 1
    assert _order(store_db, data["id"])["closed_at"] == clock.iso(closed)

    _at(monkeypatch, closed + 30 * DAY - SECOND)
    assert forgetting.forget_due(store_db)["orders"] == 0
    kept = _order(store_db, data["id"])
    assert kept["customer_name"] == "Élodie" and kept["customer_id"] == "cus_elodie"

    _at(monkeypatch, closed + 30 * DAY + SECOND)
    assert forgetting.forget_due(store_db)["orders"] == 1
    gone = _order(store_db, data["id"])
    assert gone["customer_name"] == gone["customer_key"] == gone["customer_initials"] == ""
    assert gone["customer_id"] is None and gone["forgotten_at"]
    assert gone["status"] == how and gone["number"] == data["number"]  # the order stays
    assert queries.search(store_db, "elodie") == []
    names = store_db.execute("SELECT collector_name FROM handovers").fetchall()
    assert all(n == ("",) for n in names)
    if how == "collected":  # the hand-over the hub acknowledged named the proxy: no more
        [row] = store_db.execute(
            "SELECT payload FROM outbox WHERE type = 'order.handover'"
        ).fetchall()
        assert "Paul" not in row[0] and json.loads(row[0])["order_id"] == data["id"]
    assert _order(store_db, other["id"])["customer_name"] == "Inès"
    # A late page of the feed about the closed order does not bring the name back.
    apply_orders(store_db, [{**data, "status": how, "revision": 9}])
    late = _order(store_db, data["id"])
    assert late["customer_name"] == "" and late["customer_id"] is None
    assert forgetting.forget_due(store_db)["orders"] == 0  # once


def _request(db) -> str:
    customer = check_customer("pickup", "Zoé Lambert", "zoe.lambert@example.org", None)
    sku = db.execute("SELECT sku FROM variants LIMIT 1").fetchone()[0]
    return queue_order_request(db, [(sku, 1)], customer)


def _payload(db, tx_id) -> dict:
    return json.loads(db.execute("SELECT payload FROM outbox WHERE id = ?", [tx_id]).fetchone()[0])


def test_an_order_request_forgets_the_customer_once_the_hub_has_it(store_db, now):
    tx_id = _request(store_db)
    forgetting.forget_due(store_db)
    queued = _payload(store_db, tx_id)
    assert queued["customer_email"] == "zoe.lambert@example.org"  # not sent yet: kept
    outbox.mark_acked(store_db, tx_id, {"order_id": "o-9", "number": "CC-9"}, hooks=ACK_HOOKS)
    assert forgetting.forget_due(store_db)["requests"] == 1
    sent = _payload(store_db, tx_id)
    assert not {"customer_email", "customer_name", "address"} & set(sent)
    assert sent["lines"] == queued["lines"] and sent["request_id"] == tx_id
    raw = store_db.execute("SELECT * FROM outbox WHERE id = ?", [tx_id]).fetchone()
    assert "Zoé" not in json.dumps(raw) and "example.org" not in json.dumps(raw)
    assert forgetting.forget_due(store_db)["requests"] == 0
    # The kiosk's page still says where the request is.
    from app.store.domain.order_requests import order_request_state

    assert order_request_state(store_db, tx_id)["state"] == "sent"


def test_a_refused_order_request_keeps_the_email_until_discarded(store_db, now):
    tx_id = _request(store_db)
    with dbmod.write(store_db):
        outbox.park(store_db, tx_id, "invalid", "refused")
    forgetting.forget_due(store_db)
    assert _payload(store_db, tx_id)["customer_email"]
    outbox.discard(store_db, tx_id, reason="test", by="hq", hooks=ACK_HOOKS)
    forgetting.forget_due(store_db)
    assert "customer_email" not in _payload(store_db, tx_id)
    assert (
        ORDER_REQUEST
        == store_db.execute("SELECT type FROM outbox WHERE id = ?", [tx_id]).fetchone()[0]
    )


def test_a_card_not_seen_in_the_feed_for_60_days_is_forgotten(store_db, now, monkeypatch):
    assert forgetting.FORGET_CARD_DAYS == 60
    with dbmod.write(store_db):
        customer_cards.save_card(store_db, "card-old", "cus_a", "Anna")
        customer_cards.save_card(store_db, "card-busy", "cus_b", "Bruno")
    # Bruno has an order still open here: his card stays, however long the feed is quiet.
    _add(store_db, "cus_b", customer="Bruno")
    _at(monkeypatch, now + 60 * DAY - SECOND)
    assert forgetting.forget_due(store_db)["cards"] == 0
    assert customer_cards.first_name(store_db, "card-old") == "Anna"
    # Seen again in the feed: the 60 days start again.
    _at(monkeypatch, now + 30 * DAY)
    with dbmod.write(store_db):
        customer_cards.save_card(store_db, "card-old", "cus_a", "Anna")
    _at(monkeypatch, now + 90 * DAY - SECOND)
    assert forgetting.forget_due(store_db)["cards"] == 0
    _at(monkeypatch, now + 90 * DAY + SECOND)
    assert forgetting.forget_due(store_db)["cards"] == 1
    assert customer_cards.first_name(store_db, "card-old") is None
    assert customer_cards.first_name(store_db, "card-busy") == "Bruno"


def test_the_store_timer_runs_the_forgetting(store_data, store_db, now, staff, monkeypatch):
    from app.store.jobs import ExpiryTimer

    data = add_order(store_db, customer="Élodie Martin")
    _collect(store_db, data, staff)
    forgetting.forget_due(store_db)  # seen closed now
    _at(monkeypatch, clock.utcnow() + 31 * DAY)
    timer = ExpiryTimer(dbmod.db_path(store_data), interval=0.05).start()
    try:
        for _ in range(200):
            if _order(store_db, data["id"])["forgotten_at"]:
                break
            timer._stop.wait(0.05)
    finally:
        timer.stop()
    assert _order(store_db, data["id"])["customer_name"] == ""
