"""Click-and-collect against a REAL hub process and a real store server synced to it:
an order placed at the hub reaches the store on the change feed, staff prepare it, make
it ready and hand it over over HTTP; the hub holds every transaction exactly once.
Then the same with the hub stopped during the counter work, and expiry with a clock
moved forward on the store server."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from app.core import clock
from app.core import db as dbmod
from app.hub.domain import notifications

from .counter_client import Counter, _text
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, hub_db, hub_levels, hub_transactions, store_env, wait_for

pytestmark = pytest.mark.clock  # orders expire days after the clock


def _place_order(hub_data: Path, lines: list[dict], expiry_days: int = 5) -> dict:
    """A web order placed at the hub (the web shop's side), in this process."""
    from app.hub.domain.keys import current_private_key
    from app.hub.domain.orders import create_order
    from tests.hub_fixtures import open_hub_db

    db = open_hub_db(hub_data)
    try:
        return create_order(
            db,
            LYON,
            "Élodie Martin",
            "elodie.martin@example.org",
            lines,
            expiry_days=expiry_days,
            private_key=current_private_key(hub_data),
        )
    finally:
        db.close()


def _skus(hub_data: Path, n: int = 2) -> list[str]:
    levels = hub_levels(hub_data)
    return sorted(s for s, q in levels.items() if q >= 3)[:n]


def _store_order(data: Path, order_id: str) -> dict | None:
    db = dbmod.connect(dbmod.db_path(data))
    try:
        rows = db.execute_returning_dicts("SELECT * FROM orders WHERE id = ?", [order_id])
        return rows[0] if rows else None
    finally:
        db.close()


def _outbox_ids(data: Path, order_id: str) -> dict[str, str]:
    """id -> type of every transaction the store queued about this order (stock too)."""
    db = dbmod.connect(dbmod.db_path(data))
    try:
        rows = db.execute(
            "SELECT id, type FROM outbox WHERE order_id = ? OR (type = 'stock.movement' "
            "AND payload LIKE '%' || (SELECT number FROM orders WHERE id = ?) || '%') "
            "ORDER BY rowid",
            [order_id, order_id],
        ).fetchall()
        return dict(rows)
    finally:
        db.close()


def _health(url: str) -> dict:
    return requests.get(url + "/healthz", timeout=5).json()


def _drained(url: str) -> bool:
    h = _health(url)
    return h["outbox_depth"] == 0 and h["parked"] == 0


def _hub(hub_data: Path, sql: str, params: list) -> list[tuple]:
    db = hub_db(hub_data)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def _hub_status(hub_data: Path, order_id: str) -> str:
    return _hub(hub_data, "SELECT status FROM orders WHERE id = ?", [order_id])[0][0]


def _prepare_and_ready(staff: Counter, order: dict, slot: str = "B12") -> None:
    """Scan every unit of every line, then put the bag on its shelf."""
    oid = order["id"]
    assert staff.get(f"/staff/orders/{oid}/prepare").status_code == 200
    hx = {"HX-Request": "true", "HX-Target": "prep"}
    for ln in order["lines"]:
        for _ in range(ln["qty"]):
            r = staff.post(f"/staff/orders/{oid}/prepare/scan", {"code": ln["ean"]}, headers=hx)
            assert r.status_code == 200 and 'data-cue="ok"' in r.text, _text(r)[-300:]
    r = staff.post(f"/staff/orders/{oid}/ready", {"shelf_slot": slot})
    assert r.status_code == 302, _text(r)[-300:]


def _hand_over(staff: Counter, order: dict) -> str:
    oid = order["id"]
    hid = staff.handover_id(oid)
    form = {f"qty_{ln['line']}": str(ln["qty"]) for ln in order["lines"]}
    r = staff.post(f"/staff/orders/{oid}/handover", form | {"handover_id": hid})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/handovers/{hid}"), r.text
    return hid


def _retry_now(staff: Counter) -> None:
    r = staff.post("/staff/sync/retry", csrf=True)
    assert r.status_code == 302


def _assert_hub_has_it_all_once(hub_data: Path, store: Path, order_id: str, kinds: list[str]):
    sent = _outbox_ids(store, order_id)
    assert sorted(sent.values()) == sorted(kinds), sent
    counts = hub_transactions(hub_data, list(sent))
    assert set(counts.values()) == {1}, counts
    assert _hub(hub_data, "SELECT count(*) FROM handovers WHERE order_id = ?", [order_id]) == [
        (kinds.count("order.handover"),)
    ]


def _ready_notifications(hub_data: Path, order_id: str) -> list[tuple]:
    """The order's "ready" mails: subject, QR token and body (opened: sealed at rest)."""
    db = hub_db(hub_data)
    try:
        return [
            (n["subject"], n["qr_token"], n["body"])
            for n in notifications.for_order(db, order_id)
            if n["kind"] == "ready"
        ]
    finally:
        db.close()


def test_order_from_the_hub_prepared_ready_and_handed_over(
    hub_data, synced_store, hub_factory, server_factory
):
    hub = hub_factory(hub_data)
    store = server_factory(synced_store, store_env(hub.url, hub_data))
    skus = _skus(hub_data)
    before = {s: hub_levels(hub_data)[s] for s in skus}
    made = _place_order(hub_data, [{"sku": skus[0], "qty": 2}, {"sku": skus[1], "qty": 1}])
    order = made["order"]
    assert {s: hub_levels(hub_data)[s] for s in skus} == {
        skus[0]: before[skus[0]] - 2,
        skus[1]: before[skus[1]] - 1,
    }
    # The change feed brings it to the store (long-poll: about a second).
    local = wait_for(lambda: _store_order(synced_store, order["id"]), 15, "the order at the store")
    assert local["status"] == "placed" and local["number"] == order["number"]

    staff = Counter(store.url, synced_store)
    listed = staff.get("/staff/orders")
    assert order["number"] in listed.text
    _prepare_and_ready(staff, order)
    wait_for(lambda: _hub_status(hub_data, order["id"]) == "ready", 15, "ready at the hub")
    [(subject, qr, body)] = _ready_notifications(hub_data, order["id"])
    assert subject == "Votre commande est prête"
    assert qr == made["pickup_token"] and made["pickup_code"] in body

    # The customer gives the number and the code from the "ready" message.
    assert staff.verify_code(order["number"], made["pickup_code"]).status_code == 302
    _hand_over(staff, order)
    wait_for(lambda: _hub_status(hub_data, order["id"]) == "collected", 15, "collected at hub")
    wait_for(lambda: _drained(store.url), 15, "the outbox to drain")
    _assert_hub_has_it_all_once(
        hub_data, synced_store, order["id"], ["order.ready", "order.handover"]
    )
    assert _hub(
        hub_data,
        "SELECT qty_ready, qty_collected FROM order_lines WHERE order_id = ? ORDER BY line",
        [order["id"]],
    ) == [(2, 2), (1, 1)]
    # The hub's echo of its new state does not move the store's order backwards.
    wait_for(
        lambda: _store_order(synced_store, order["id"])["revision"] > local["revision"],
        15,
        "the hub's order change back at the store",
    )
    assert _store_order(synced_store, order["id"])["status"] == "collected"
    # Nothing else moved the stock: the units left with the customer.
    assert {s: hub_levels(hub_data)[s] for s in skus} == {
        skus[0]: before[skus[0]] - 2,
        skus[1]: before[skus[1]] - 1,
    }


def test_hand_over_with_the_hub_stopped_then_everything_arrives_once(
    hub_data, synced_store, hub_factory, server_factory
):
    hub = hub_factory(hub_data)
    store = server_factory(synced_store, store_env(hub.url, hub_data, timeout=1))
    skus = _skus(hub_data)
    made = _place_order(hub_data, [{"sku": skus[0], "qty": 1}, {"sku": skus[1], "qty": 2}])
    order = made["order"]
    wait_for(lambda: _store_order(synced_store, order["id"]), 15, "the order at the store")

    hub.stop()
    staff = Counter(store.url, synced_store)
    _prepare_and_ready(staff, order, slot="C3")
    # Offline: the pickup QR is checked with the hub key the store already holds.
    r = staff.get("/staff/orders/scan", params={"code": made["pickup_token"]})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/{order['id']}/handover"), (
        re.search(r"notice-error[^>]*>([^<]*)", _text(r)).group(1)
    )
    _hand_over(staff, order)
    assert _store_order(synced_store, order["id"])["status"] == "collected"
    health = wait_for(
        lambda: (h := _health(store.url))["online"] is False and h, 10, "the store offline"
    )
    assert health["outbox_depth"] == 2 and health["last_error"]
    assert _hub_status(hub_data, order["id"]) == "placed"

    hub.start()  # same port: the store's configuration still points at it
    _retry_now(staff)  # skip whatever backoff the worker is sleeping
    wait_for(lambda: _drained(store.url), 20, "the outbox to drain")
    assert _hub_status(hub_data, order["id"]) == "collected"
    _assert_hub_has_it_all_once(
        hub_data, synced_store, order["id"], ["order.ready", "order.handover"]
    )
    assert len(_ready_notifications(hub_data, order["id"])) == 1
    # A second retry sends nothing again.
    _retry_now(staff)
    wait_for(lambda: _health(store.url)["online"], 10, "the store online")
    _assert_hub_has_it_all_once(
        hub_data, synced_store, order["id"], ["order.ready", "order.handover"]
    )
    assert _store_order(synced_store, order["id"])["status"] == "collected"


def test_uncollected_order_expires_and_its_stock_goes_back_at_the_hub(
    hub_data, synced_store, hub_factory, server_factory
):
    hub = hub_factory(hub_data)
    env = store_env(hub.url, hub_data)
    store = server_factory(synced_store, env)
    sku = _skus(hub_data, 1)[0]
    before = hub_levels(hub_data)[sku]
    made = _place_order(hub_data, [{"sku": sku, "qty": 2}], expiry_days=1)
    order = made["order"]
    wait_for(lambda: _store_order(synced_store, order["id"]), 15, "the order at the store")
    staff = Counter(store.url, synced_store)
    _prepare_and_ready(staff, order)
    wait_for(lambda: _drained(store.url), 15, "order.ready sent")
    assert _hub_status(hub_data, order["id"]) == "ready"
    assert hub_levels(hub_data)[sku] == before - 2
    store.stop()

    # A week later (the store's clock only: the hub and the request signatures keep
    # real time), the expiry timer runs as the server starts.
    later = clock.iso(clock.utcnow() + timedelta(days=7))
    store = server_factory(synced_store, env | {"KIOSK_FAKE_NOW": later})
    wait_for(lambda: _hub_status(hub_data, order["id"]) == "expired", 20, "expired at the hub")
    wait_for(lambda: _drained(store.url), 15, "the outbox to drain")
    assert _store_order(synced_store, order["id"])["status"] == "expired"
    assert hub_levels(hub_data)[sku] == before  # the units are available again
    _assert_hub_has_it_all_once(
        hub_data, synced_store, order["id"], ["order.ready", "order.expired", "stock.movement"]
    )
    kinds = [
        k
        for (k,) in _hub(
            hub_data, "SELECT kind FROM notifications WHERE order_id = ? ORDER BY id", [order["id"]]
        )
    ]
    assert kinds.count("expired") == 1 and kinds.count("ready") == 1
    # The store holds the hub's level again, nothing pending on top of it.
    wait_for(lambda: _store_level(synced_store, sku) == before, 15, "the level at the store")


def _store_level(data: Path, sku: str) -> int | None:
    db = dbmod.connect(dbmod.db_path(data))
    try:
        row = db.execute(
            "SELECT qty FROM stock_levels WHERE store_id = ? AND sku = ?", [LYON, sku]
        ).fetchone()
        return row[0] if row else None
    finally:
        db.close()
