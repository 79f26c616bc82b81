"""Click-and-collect rules in the store (app/store/domain/orders/), without a browser or a hub."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta

import pytest

from app.core import clock
from app.core import db as dbmod
from app.core.secrets import hash_secret
from app.store.domain import stock
from app.store.domain.orders import calendar, expiry, pickup, preparation, queries, returns
from app.store.domain.orders.status import OrderError
from app.store.domain.stock import self_store_id

from .conftest import add_staff_member
from .order_helpers import (
    PICKUP_CODE,
    add_order,
    apply_orders,
    install_hub_key,
    order_data,
    pick_variants,
    pickup_token,
)

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

# A Wednesday, 10:00 in Paris.
NOW = "2026-11-18T09:00:00Z"


@pytest.fixture
def now(monkeypatch):
    monkeypatch.setenv("KIOSK_FAKE_NOW", NOW)
    return clock.utcnow()


@pytest.fixture
def staff(store_data):
    return add_staff_member(store_data, "Camille")


@pytest.fixture
def manager(store_data):
    return add_staff_member(store_data, "Maëlle", role="manager")


def outbox(db, kind=None):
    rows = db.execute_returning_dicts("SELECT * FROM outbox ORDER BY rowid")
    for r in rows:
        r["payload"] = json.loads(r["payload"])
    return [r for r in rows if kind is None or r["type"] == kind]


def audit_actions(db):
    return [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY id").fetchall()]


def prepare(db, data, staff, slot="A1"):
    for ln in data["lines"]:
        for _ in range(ln["qty"]):
            preparation.scan_item(db, data["id"], ln["ean"], staff["id"])
    return preparation.mark_ready(db, data["id"], slot, staff["id"])


def test_order_change_is_stored_and_listed(store_db, now):
    data = add_order(store_db)
    order = queries.get_order(store_db, data["id"])
    assert order["status"] == "placed" and len(order["lines"]) == 2
    assert queries.counts(store_db, now)["to_prepare"] == 1
    [row] = queries.list_orders(store_db, "to_prepare", now=now)
    assert row["id"] == data["id"] and row["late_minutes"] == 60  # promised 2 h after 3 h ago
    assert queries.find_by_number(store_db, data["number"].lower())["id"] == data["id"]
    assert queries.find_by_number(store_db, data["number"][3:])["id"] == data["id"]
    # Accent- and case-insensitive first-name search (the store holds no surname).
    assert [o["id"] for o in queries.search(store_db, "ELOD")] == [data["id"]]
    assert queries.search(store_db, "Martin") == []
    assert order["customer_name"] == "Élodie" and order["customer_email"] == ""
    assert queries.search(store_db, "x") == []


def test_lists_oldest_first_and_paginated(store_db, now):
    datas = [order_data(store_db, placed_at=now - timedelta(hours=h)) for h in range(1, 8)]
    apply_orders(store_db, datas)
    page1 = queries.list_orders(store_db, "to_prepare", now=now, limit=3)
    page2 = queries.list_orders(store_db, "to_prepare", now=now, limit=3, offset=3)
    assert [o["id"] for o in page1 + page2] == [d["id"] for d in reversed(datas)][:6]
    with pytest.raises(OrderError):
        queries.list_orders(store_db, "nope", now=now)


def test_picking_list_grouped_by_category(store_db, now):
    data = add_order(store_db, variants=pick_variants(store_db, 4))
    groups = preparation.picking_list(store_db, data["id"])
    assert sum(len(g["lines"]) for g in groups) == 4
    assert all(ln["category_slug"] == g["slug"] for g in groups for ln in g["lines"])


def test_scan_refuses_wrong_item_and_one_too_many(store_db, now, staff):
    variants = pick_variants(store_db, 3)
    data = add_order(store_db, variants=variants[:2], qtys=[2, 1])
    first = data["lines"][0]
    result = preparation.scan_item(store_db, data["id"], first["ean"], staff["id"])
    assert result["picked"] == 1 and not result["complete"]
    assert queries.get_order(store_db, data["id"])["status"] == "preparing"
    assert preparation.scan_item(store_db, data["id"], first["sku"], staff["id"])["complete"]
    with pytest.raises(OrderError) as exc:
        preparation.scan_item(store_db, data["id"], first["ean"], staff["id"])  # double scan
    assert exc.value.code == "too_many"
    with pytest.raises(OrderError) as exc:
        preparation.scan_item(store_db, data["id"], variants[2]["ean"], staff["id"])
    assert exc.value.code == "wrong_item"
    with pytest.raises(OrderError) as exc:
        preparation.scan_item(store_db, data["id"], "0000000000000", staff["id"])
    assert exc.value.code == "unknown_item"
    assert queries.get_order(store_db, data["id"])["lines"][0]["qty_picked"] == 2


def test_ready_needs_every_line_then_queues_order_ready(store_db, now, staff):
    data = add_order(store_db, qtys=[1, 2])
    preparation.scan_item(store_db, data["id"], data["lines"][0]["ean"], staff["id"])
    with pytest.raises(OrderError) as exc:
        preparation.mark_ready(store_db, data["id"], "B2", staff["id"])
    assert exc.value.code == "incomplete"
    with pytest.raises(OrderError) as exc:
        preparation.mark_ready(store_db, data["id"], "", staff["id"])
    assert exc.value.code == "shelf_slot"
    preparation.scan_item(store_db, data["id"], data["lines"][1]["ean"], staff["id"])
    preparation.mark_short(store_db, data["id"], 2, staff["id"])
    order = preparation.mark_ready(store_db, data["id"], "B2", staff["id"])
    assert order["status"] == "ready_partial" and order["shelf_slot"] == "B2"
    [tx] = outbox(store_db, "order.ready")
    assert tx["payload"]["lines"] == [{"line": 1, "qty_ready": 1}, {"line": 2, "qty_ready": 1}]
    assert tx["order_id"] == data["id"]
    with pytest.raises(OrderError) as exc:
        preparation.scan_item(store_db, data["id"], data["lines"][1]["ean"], staff["id"])
    assert exc.value.code == "invalid_state"
    assert "order.ready" in audit_actions(store_db)


def test_pickup_qr_verified_offline_and_bad_ones_refused(store_db, now):
    install_hub_key(store_db)
    data = add_order(store_db, status="ready")
    me = self_store_id(store_db)
    assert pickup.verify_token(store_db, pickup_token(data["id"], me))["id"] == data["id"]
    other = add_order(store_db, status="ready")
    cases = {
        "wrong_store": pickup_token(data["id"], "st-elsewhere"),
        "expired": pickup_token(data["id"], me, ttl_s=60, now=now.timestamp() - 120),
        "unknown_order": pickup_token("o-nothere", me),
        "malformed": "KQ1.NOPE.NOPE",
    }
    from app.core import tokens

    forged_key = tokens.load_private_key(tokens.generate_keypair()[0])
    cases["bad_signature"] = pickup_token(data["id"], me, private=forged_key)
    good = pickup_token(other["id"], me)
    body = good.split(".")[1]
    # The token of another order, with its payload swapped: the signature no longer fits.
    cases["bad_signature_2"] = ".".join(
        ["KQ1", pickup_token(data["id"], me).split(".")[1], good.split(".")[2]]
    )
    assert body
    for code, token in cases.items():
        with pytest.raises(OrderError) as exc:
            pickup.verify_token(store_db, token)
        assert exc.value.code == code.removesuffix("_2"), code


def test_pickup_code_and_lockout_until_a_manager_unlocks(store_db, now, staff, manager):
    data = add_order(store_db, status="ready")
    other = add_order(store_db, status="ready", code_hash_value=hash_secret("111111"))
    assert (
        pickup.verify_code(store_db, data["number"], PICKUP_CODE, staff["id"])["id"] == data["id"]
    )
    with pytest.raises(OrderError) as exc:
        pickup.verify_code(store_db, data["number"], "12345", staff["id"])
    assert exc.value.code == "code_format"
    # Another order's code is a wrong code for this one.
    for left in (4, 3, 2, 1):
        with pytest.raises(OrderError) as exc:
            pickup.verify_code(store_db, data["number"], "111111", staff["id"])
        assert exc.value.code == "wrong_code" and exc.value.extra["attempts_left"] == left
    with pytest.raises(OrderError) as exc:
        pickup.verify_code(store_db, data["number"], "000000", staff["id"])
    assert exc.value.code == "code_locked"
    with pytest.raises(OrderError) as exc:  # even the right code now
        pickup.verify_code(store_db, data["number"], PICKUP_CODE, staff["id"])
    assert exc.value.code == "code_locked"
    assert pickup.verify_code(store_db, other["number"], "111111", staff["id"])
    with pytest.raises(OrderError) as exc:
        pickup.unlock_code(store_db, data["id"], staff["id"])
    assert exc.value.code == "manager_required"
    pickup.unlock_code(store_db, data["id"], manager["id"])
    assert pickup.verify_code(store_db, data["number"], PICKUP_CODE, staff["id"])
    actions = audit_actions(store_db)
    assert "order.code_locked" in actions and "order.code_unlocked" in actions
    with pytest.raises(OrderError) as exc:
        pickup.verify_code(store_db, "CC-00000000", PICKUP_CODE, staff["id"])
    assert exc.value.code == "unknown_order"


def test_full_and_partial_handover_never_twice(store_db, now, staff):
    data = add_order(store_db, qtys=[2, 1])
    prepare(store_db, data, staff)
    with pytest.raises(OrderError) as exc:
        pickup.handover(store_db, data["id"], staff_id=staff["id"], method="qr", lines={1: 3})
    assert exc.value.code == "qty_out_of_range"
    with pytest.raises(OrderError) as exc:
        pickup.handover(store_db, data["id"], staff_id=staff["id"], method="qr", lines={9: 1})
    assert exc.value.code == "unknown_line"
    with pytest.raises(OrderError) as exc:
        pickup.handover(store_db, data["id"], staff_id=staff["id"], method="qr", lines={1: -1})
    assert exc.value.code == "invalid_qty"
    with pytest.raises(OrderError) as exc:
        pickup.handover(store_db, data["id"], staff_id=staff["id"], method="qr", collector="proxy")
    assert exc.value.code == "proxy_name"
    first = pickup.handover(
        store_db,
        data["id"],
        staff_id=staff["id"],
        method="code",
        lines={1: 1, 2: 0},
        collector="proxy",
        collector_name="Jean Dupont",
    )
    assert first["status"] == "partially_collected"
    again = pickup.handover(
        store_db,
        data["id"],
        staff_id=staff["id"],
        method="code",
        lines={1: 1},
        handover_id=first["id"],
    )
    assert again["repeat"] and again["id"] == first["id"]
    rest = pickup.handover(store_db, data["id"], staff_id=staff["id"], method="qr")
    assert rest["status"] == "collected" and rest["lines"] == [
        {"line": 1, "qty": 1},
        {"line": 2, "qty": 1},
    ]
    with pytest.raises(OrderError) as exc:
        pickup.handover(store_db, data["id"], staff_id=staff["id"], method="qr")
    assert exc.value.code == "already_collected"
    txs = outbox(store_db, "order.handover")
    assert len(txs) == 2
    assert txs[0]["payload"]["collector_name"] == "Jean Dupont"
    assert txs[0]["payload"]["lines"] == [{"line": 1, "qty": 1}]
    assert queries.counts(store_db, now)["collected_today"] == 1


def test_two_tablets_hand_over_at_once_exactly_one_wins(store_data, now, staff):
    db = dbmod.connect(dbmod.db_path(store_data))
    data = add_order(db)
    prepare(db, data, staff)
    results, barrier = [], threading.Barrier(4)

    def tablet():
        conn = dbmod.connect(dbmod.db_path(store_data))
        barrier.wait()
        try:
            pickup.handover(conn, data["id"], staff_id=staff["id"], method="qr")
            results.append("ok")
        except OrderError as exc:
            results.append(exc.code)
        finally:
            conn.close()

    threads = [threading.Thread(target=tablet) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["already_collected"] * 3 + ["ok"]
    assert len(outbox(db, "order.handover")) == 1
    assert db.execute("SELECT count(*) FROM handovers").fetchone()[0] == 1
    db.close()


def test_override_is_manager_only_with_a_reason(store_db, now, staff, manager):
    data = add_order(store_db)
    prepare(store_db, data, staff)
    with pytest.raises(OrderError) as exc:
        pickup.handover(
            store_db,
            data["id"],
            staff_id=staff["id"],
            method="override",
            manager_id=staff["id"],
            override_reason="lost phone",
        )
    assert exc.value.code == "manager_required"
    with pytest.raises(OrderError) as exc:
        pickup.handover(
            store_db,
            data["id"],
            staff_id=manager["id"],
            method="override",
            manager_id=manager["id"],
        )
    assert exc.value.code == "override_reason"
    done = pickup.handover(
        store_db,
        data["id"],
        staff_id=manager["id"],
        method="override",
        manager_id=manager["id"],
        override_reason="ID card shown",
    )
    assert done["status"] == "collected"
    [tx] = outbox(store_db, "order.handover")
    assert tx["payload"]["manager"] == manager["id"] and tx["payload"]["method"] == "override"


def test_handover_refused_before_ready(store_db, now, staff):
    data = add_order(store_db)
    with pytest.raises(OrderError) as exc:
        pickup.handover(store_db, data["id"], staff_id=staff["id"], method="qr")
    assert exc.value.code == "invalid_state"
    assert outbox(store_db) == []


def test_expiry_skips_closing_days_reminds_the_day_before_and_releases_stock(
    store_db, monkeypatch, staff
):
    # Ready on Friday 2026-11-20; 3 opening days: Sat 21, (Sun closed), Mon 23 closed
    # by a holiday, Tue 24, Wed 25 -> last day Wed 25, expires at midnight into Thu 26.
    monkeypatch.setenv("KIOSK_FAKE_NOW", "2026-11-20T10:00:00Z")
    calendar.add_closing_day(store_db, date(2026, 11, 23), "holiday")
    data = add_order(store_db, qtys=[2, 1], expiry_days=3)
    skus = [ln["sku"] for ln in data["lines"]]
    prepare(store_db, data, staff)
    pickup.handover(store_db, data["id"], staff_id=staff["id"], method="qr", lines={2: 1})
    order = queries.get_order(store_db, data["id"])
    assert order["expires_at"] == "2026-11-25T23:00:00Z"  # midnight in Paris
    before = stock.levels(store_db, skus)

    monkeypatch.setenv("KIOSK_FAKE_NOW", "2026-11-24T20:00:00Z")  # Tuesday evening
    assert expiry.expire_due(store_db) == {"expired": [], "reminded": []}
    monkeypatch.setenv("KIOSK_FAKE_NOW", "2026-11-25T06:00:00Z")  # the last day
    assert expiry.expire_due(store_db) == {"expired": [], "reminded": [data["id"]]}
    assert expiry.expire_due(store_db) == {"expired": [], "reminded": []}  # once only
    [reminder] = outbox(store_db, "order.reminder")
    assert reminder["payload"] == {"order_id": data["id"], "expires_at": "2026-11-25T23:00:00Z"}
    ready = queries.list_orders(store_db, "ready", now=clock.utcnow())
    assert ready[0]["days_left"] == 1

    monkeypatch.setenv("KIOSK_FAKE_NOW", "2026-11-25T23:00:01Z")
    assert expiry.expire_due(store_db)["expired"] == [data["id"]]
    assert queries.get_order(store_db, data["id"])["status"] == "expired"
    after = stock.levels(store_db, skus)
    # The 2 units of line 1 go back; line 2 was collected.
    assert after == {skus[0]: before[skus[0]] + 2, skus[1]: before[skus[1]]}
    [expired] = outbox(store_db, "order.expired")
    moves = [t for t in outbox(store_db, "stock.movement") if t["payload"]["kind"] == "released"]
    assert [m["payload"]["delta"] for m in moves] == [2]
    assert expired["payload"] == {"order_id": data["id"]}
    assert expiry.expire_due(store_db)["expired"] == []


def test_return_quantities_condition_and_refund(store_db, now, staff, manager):
    data = add_order(store_db, qtys=[2, 1])
    prepare(store_db, data, staff)
    pickup.handover(store_db, data["id"], staff_id=staff["id"], method="qr", lines={1: 2})
    sku1, sku2 = (ln["sku"] for ln in data["lines"])
    found = returns.find_for_return(store_db, number=data["number"], first_name="ÉLODIE")
    assert found["id"] == data["id"]
    # The store holds the first name only: neither the surname nor the e-mail finds it.
    for other in ("Martin", "Elodie.Martin@example.org", "Dupont", ""):
        with pytest.raises(OrderError) as exc:
            returns.find_for_return(store_db, number=data["number"], first_name=other)
        assert exc.value.code == "details_mismatch"
    with pytest.raises(OrderError) as exc:  # line 2 was never collected
        returns.record_return(
            store_db,
            data["id"],
            [{"line": 2, "qty": 1, "condition": "damaged"}],
            reason="too small",
            refund="store_credit",
            staff_id=staff["id"],
        )
    assert exc.value.code == "qty_out_of_range"
    level = stock.levels(store_db, [sku1])[sku1]
    done = returns.record_return(
        store_db,
        data["id"],
        [
            {"line": 1, "qty": 1, "condition": "resellable"},
            {"line": 1, "qty": 1, "condition": "damaged"},
        ],
        reason="trop petit",
        refund="original_payment",
        staff_id=staff["id"],
    )
    assert stock.levels(store_db, [sku1])[sku1] == level + 1  # the resellable one only
    with pytest.raises(OrderError) as exc:
        returns.record_return(
            store_db,
            data["id"],
            [{"line": 1, "qty": 1, "condition": "damaged"}],
            reason="again",
            refund="store_credit",
            staff_id=staff["id"],
        )
    assert exc.value.code == "qty_out_of_range"
    [tx] = outbox(store_db, "order.return")
    assert tx["payload"]["return_id"] == done["id"]
    assert [ln["qty"] for ln in tx["payload"]["lines"]] == [1, 1]
    # Without an order: manager only.
    with pytest.raises(OrderError) as exc:
        returns.record_return(
            store_db,
            None,
            [{"code": sku2, "qty": 1, "condition": "resellable"}],
            reason="gift",
            refund="store_credit",
            staff_id=staff["id"],
            manager_id=staff["id"],
        )
    assert exc.value.code == "manager_required"
    returns.record_return(
        store_db,
        None,
        [{"code": sku2, "qty": 1, "condition": "resellable"}],
        reason="gift",
        refund="store_credit",
        staff_id=manager["id"],
        manager_id=manager["id"],
    )
    assert outbox(store_db, "order.return")[-1]["payload"]["order_id"] is None


def test_feed_never_moves_an_order_backwards_while_unacknowledged(store_db, now, staff):
    data = add_order(store_db)
    prepare(store_db, data, staff)
    # The hub re-sends the order as placed (an older page, or before it saw order.ready),
    # with a new promised time: the store keeps its status and counters, takes the rest.
    again = {**data, "promised_at": "2026-11-18T15:00:00Z", "revision": 2}
    apply_orders(store_db, [again])
    order = queries.get_order(store_db, data["id"])
    assert order["status"] == "ready" and order["promised_at"] == "2026-11-18T15:00:00Z"
    assert all(ln["qty_ready"] == ln["qty"] for ln in order["lines"])
    # Once acknowledged, a hub change to a later state is taken; an earlier one never.
    from app.store.domain import outbox as outboxmod
    from app.store.domain.acks import ACK_HOOKS

    for tx in outbox(store_db):
        outboxmod.mark_acked(store_db, tx["id"], {}, hooks=ACK_HOOKS)
    apply_orders(store_db, [again])
    assert queries.get_order(store_db, data["id"])["status"] == "ready"
    collected = order_data(
        store_db, status="collected", order_id=data["id"], number=data["number"], revision=3
    )
    collected["lines"] = [
        {**ln, "qty_ready": ln["qty"], "qty_collected": ln["qty"]} for ln in data["lines"]
    ]
    apply_orders(store_db, [collected])
    assert queries.get_order(store_db, data["id"])["status"] == "collected"


def test_order_for_another_store_is_ignored(store_db, now):
    data = order_data(store_db, store_id="st-elsewhere")
    apply_orders(store_db, [data])
    assert queries.get_order(store_db, data["id"]) is None


def test_review_fixes_return_limits_ids_and_refused_scan_audit(store_db, store_data):
    """A no-order return above what the hub accepts, a malformed or reused return id,
    and the audit entry of a refused scan."""
    from .conftest import add_staff_member
    from .order_helpers import add_order, install_hub_key, pick_variants

    install_hub_key(store_db)
    manager = add_staff_member(store_data, name="Boss", role="manager")
    staff = add_staff_member(store_data, name="Clerk")
    variants = pick_variants(store_db, 3)
    ean = variants[2]["ean"]
    with pytest.raises(OrderError) as err:
        returns.record_return(
            store_db,
            None,
            [{"code": ean, "qty": 1000, "condition": "resellable"}],
            reason="x",
            refund="store_credit",
            staff_id=staff["id"],
            manager_id=manager["id"],
        )
    assert err.value.code == "qty_out_of_range"
    assert store_db["outbox"].count == 0
    with pytest.raises(OrderError) as err:
        returns.record_return(
            store_db,
            None,
            [{"code": ean, "qty": 1, "condition": "resellable"}],
            reason="x",
            refund="store_credit",
            staff_id=staff["id"],
            manager_id=manager["id"],
            return_id="not-a-uuid",
        )
    assert err.value.code == "invalid_id"
    order = add_order(store_db, variants=variants[:1])
    with pytest.raises(OrderError) as err:
        preparation.scan_item(store_db, order["id"], variants[1]["ean"], staff["id"], "tablet")
    assert err.value.code == "wrong_item"
    assert (
        store_db.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'order.scan_wrong_item'"
        ).fetchone()[0]
        == 1
    )


def test_an_order_arriving_ready_keeps_its_collection_window(store_db):
    """The hub says when the order became ready: a store rebuilding its database from
    the feed must not start the window again."""
    from .order_helpers import apply_orders, order_data, pick_variants

    data = order_data(store_db, variants=pick_variants(store_db, 1), status="ready")
    ready_at = clock.utcnow() - timedelta(days=60)  # long ago, whatever today is
    data["ready_at"] = clock.iso(ready_at)
    apply_orders(store_db, [data])
    expires = store_db.execute("SELECT expires_at FROM orders WHERE id = ?", [data["id"]])
    assert expires.fetchone()[0] < clock.iso(ready_at + timedelta(days=14))
