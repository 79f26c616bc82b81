"""Click-and-collect at the hub: placing orders and every ``order.*`` transaction."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from app.core import tokens
from app.core.secrets import verify_secret
from app.hub import database as hdb
from app.hub.domain import keys, notifications, order_people, store_credit
from app.hub.domain.changes import changes_since
from app.hub.domain.order_rows import get_order
from app.hub.domain.orders import OrderError, create_order, order_change_data
from app.hub.protocol import transactions

from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import BORDEAUX, LYON, PARIS, open_hub_db, validate

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

NOW_ISO = "2026-11-22T14:02:00Z"


#: The data directory of each database the ``hub`` fixture opened (apply_batch needs
#: it: the hub's signing key lives there).
_DATA_DIRS: dict[int, Path] = {}


@pytest.fixture
def hub(hub_data):
    """(db, data_dir, private_key) on this test's own seeded hub."""
    db = open_hub_db(hub_data)
    private_key, _kid = keys.ensure_hub_key(db, hub_data)
    _DATA_DIRS[id(db)] = hub_data
    yield db, hub_data, private_key
    _DATA_DIRS.pop(id(db))
    db.close()


def skus_in_stock(db, store_id=LYON, n=2, offset=0):
    """``n`` skus with at least 3 units in ``store_id``."""
    rows = db.execute(
        "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 ORDER BY sku "
        "LIMIT ? OFFSET ?",
        [store_id, n, offset],
    ).fetchall()
    assert len(rows) == n
    return [r[0] for r in rows]


def level(db, sku, store_id=LYON):
    return db.execute(
        "SELECT qty FROM stock_levels WHERE store_id = ? AND sku = ?", [store_id, sku]
    ).fetchone()[0]


def place(hub, store_id=LYON, qtys=(2, 1), offset=0):
    """Place an order of ``qtys`` units on distinct in-stock skus; return create_order's dict."""
    db, _data, key = hub
    skus = skus_in_stock(db, store_id, len(qtys), offset)
    lines = [{"sku": s, "qty": q} for s, q in zip(skus, qtys, strict=True)]
    return create_order(db, store_id, "Élodie Martin", "elodie@example.com", lines, private_key=key)


def tx(tx_type, payload, tx_id=None):
    return {
        "id": tx_id or str(uuid.uuid4()),
        "type": tx_type,
        "occurred_at": NOW_ISO,
        "payload": payload,
    }


def apply(db, store_id, *items):
    results = transactions.apply_batch(db, store_id, list(items), data_dir=_DATA_DIRS[id(db)])
    validate({"results": results}, "TransactionResults")
    return results


def ready(order_id, lines, slot="A-01"):
    return tx(
        "order.ready", {"order_id": order_id, "lines": lines, "shelf_slot": slot, "staff": "sf-1"}
    )


def handover(order_id, lines, handover_id=None, **extra):
    payload = {
        "handover_id": handover_id or str(uuid.uuid4()),
        "order_id": order_id,
        "lines": lines,
        "collector": "customer",
        "method": "code",
        "staff": "sf-1",
    }
    return tx("order.handover", {**payload, **extra})


def make_ready(hub, qtys=(2, 1), store_id=LYON, short=False):
    db = hub[0]
    made = place(hub, store_id, qtys)
    oid = made["order"]["id"]
    lines = [
        {"line": i, "qty_ready": q - (1 if short and i == 1 else 0)} for i, q in enumerate(qtys, 1)
    ]
    [res] = apply(db, store_id, ready(oid, lines))
    assert res["status"] == "accepted", res
    return made


def lines_of(db, order_id):
    return {ln["line"]: ln for ln in order_change_data(db, order_id)["lines"]}


def notes(db, order_id, kind=None):
    """The order's notifications, their bodies opened (sealed at rest: order_people)."""
    rows = notifications.for_order(db, order_id)
    return [r for r in rows if kind is None or r["kind"] == kind]


# --------------------------------------------------------------------------- placing


def test_create_order_reserves_stock_and_tells_only_its_store(hub):
    db, _data, _key = hub
    sku1, sku2 = skus_in_stock(db)
    before = (level(db, sku1), level(db, sku2))
    start_seq = db.execute("SELECT max(seq) FROM changes").fetchone()[0]
    made = place(hub)
    order = made["order"]
    assert re.fullmatch(r"o-[0-9a-hjkmnp-tv-z]{16}", order["id"])
    assert re.fullmatch(r"CC-\d{8}", order["number"])
    assert re.fullmatch(r"\d{6}", made["pickup_code"])
    assert (level(db, sku1), level(db, sku2)) == (before[0] - 2, before[1] - 1)
    assert verify_secret(made["pickup_code"], order["pickup_code_hash"])
    # The store is told the first name only (and its initial), never the e-mail.
    assert order["status"] == "placed" and order["customer_initials"] == "É."
    assert order["customer_name"] == "Élodie" and order["customer_email"] is None
    assert [ln["qty_ready"] for ln in order["lines"]] == [0, 0]

    new = hdb.rows(
        db, "SELECT kind, key, store_id, data FROM changes WHERE seq > ? ORDER BY seq", [start_seq]
    )
    stock = [c for c in new if c["kind"] == "stock"]
    assert {c["key"] for c in stock} == {f"{LYON}/{sku1}", f"{LYON}/{sku2}"}
    assert all(c["store_id"] is None and "tx" not in json.loads(c["data"]) for c in stock)
    [change] = [c for c in new if c["kind"] == "order"]
    assert change["store_id"] == LYON and change["key"] == order["id"]

    mine = [c for c in changes_since(db, LYON, start_seq)["changes"] if c["kind"] == "order"]
    assert [c["data"] for c in mine] == [order]
    validate(mine[0], "OrderChange")
    for other in (PARIS, BORDEAUX):
        page = changes_since(db, other, start_seq)["changes"]
        assert not [c for c in page if c["kind"] == "order"]
        assert len([c for c in page if c["kind"] == "stock"]) == 2  # levels go to everyone
    assert [n["kind"] for n in notes(db, order["id"])] == ["placed"]
    assert made["pickup_code"] not in json.dumps(mine)  # only its hash travels


def test_ids_are_random_and_bad_orders_are_refused(hub):
    db, _data, key = hub
    numbers = {place(hub, qtys=(1,), offset=i)["order"]["number"] for i in range(5)}
    assert len(numbers) == 5
    [sku] = skus_in_stock(db, n=1)
    cases = [
        ("unknown_store", dict(store_id="st-nobody")),
        ("unknown_sku", dict(lines=[{"sku": "NOPE", "qty": 1}])),
        ("invalid_lines", dict(lines=[{"sku": sku, "qty": 0}])),
        ("invalid_lines", dict(lines=[])),
        ("invalid_customer", dict(customer_email="not-an-email")),
        ("out_of_stock", dict(lines=[{"sku": sku, "qty": level(db, sku) + 1}])),
    ]
    for code, override in cases:
        args = (
            dict(
                store_id=LYON,
                customer_name="Léa Roux",
                customer_email="lea@example.com",
                lines=[{"sku": sku, "qty": 1}],
                private_key=key,
            )
            | override
        )
        count = hdb.scalar(db, "SELECT count(*) FROM orders")
        with pytest.raises(OrderError) as exc:
            create_order(db, **args)
        assert exc.value.code == code
        assert hdb.scalar(db, "SELECT count(*) FROM orders") == count


def test_pickup_token_verifies_with_the_published_key_and_names_its_store(hub):
    db, _data, _key = hub
    made = place(hub)
    [seq] = db.execute("SELECT seq FROM changes WHERE kind = 'hub_key'").fetchone()
    page = changes_since(db, PARIS, seq - 1, 5)["changes"]
    published = [c for c in page if c["kind"] == "hub_key"]
    assert len(published) == 1  # global, announced once
    validate(published[0], "HubKeyChange")
    data = published[0]["data"]
    public = {data["kid"]: tokens.public_key_from_b64(data["public_key"])}
    claims = tokens.verify(public, made["pickup_token"], "pickup")
    assert claims["o"] == made["order"]["id"] and claims["s"] == LYON
    assert set(claims) == {"k", "jti", "iat", "exp", "kid", "o", "s"}  # no personal data
    # What a Paris store does with it: the claim names Lyon, so it is refused there.
    assert claims["s"] != PARIS
    forged_key = tokens.load_private_key(tokens.generate_keypair()[0])
    forged = tokens.mint(
        forged_key, "pickup", {"o": made["order"]["id"], "s": PARIS}, 60, kid=data["kid"]
    )
    with pytest.raises(tokens.TokenError) as exc:
        tokens.verify(public, forged, "pickup")
    assert exc.value.code == "bad_signature"
    # Starting the hub again does not announce the same key twice.
    keys.ensure_hub_key(db, hub[1])
    assert db.execute("SELECT count(*) FROM changes WHERE kind = 'hub_key'").fetchone()[0] == 1


# --------------------------------------------------------------------------- ready


def test_ready_records_the_notification_with_code_and_qr(hub):
    db = hub[0]
    made = make_ready(hub)
    oid = made["order"]["id"]
    order = get_order(db, oid)
    assert order["status"] == "ready" and order["shelf_slot"] == "A-01"
    [note] = notes(db, oid, "ready")
    assert note["subject"] == "Votre commande est prête"
    assert made["pickup_code"] in note["body"] and note["qr_token"] == made["pickup_token"]
    change = db.execute(
        "SELECT data FROM changes WHERE kind = 'order' AND key = ? ORDER BY seq DESC", [oid]
    ).fetchone()[0]
    data = json.loads(change)
    assert data["status"] == "ready" and data["revision"] == 2 and "tx" in data
    assert [ln["qty_ready"] for ln in data["lines"]] == [2, 1]


def test_ready_partial_notes_the_missing_units_and_a_correction_does_not_notify(hub):
    db = hub[0]
    made = make_ready(hub, short=True)
    oid = made["order"]["id"]
    assert get_order(db, oid)["status"] == "ready_partial"
    [note] = notes(db, oid, "ready")
    assert "partielle" in note["body"] and "1 manquant" in note["body"]
    [res] = apply(
        db,
        LYON,
        ready(oid, [{"line": 1, "qty_ready": 2}, {"line": 2, "qty_ready": 1}], slot="B-02"),
    )
    assert res["result"] == {"order_id": oid, "status": "ready"}
    assert len(notes(db, oid, "ready")) == 1


@pytest.mark.parametrize(
    "lines, slot",
    [
        ([{"line": 1, "qty_ready": 3}], "A-01"),  # more than ordered
        ([{"line": 9, "qty_ready": 1}], "A-01"),  # no such line
        ([{"line": 1, "qty_ready": 0}, {"line": 2, "qty_ready": 0}], "A-01"),  # nothing
        ([{"line": 1, "qty_ready": 1}, {"line": 1, "qty_ready": 1}], "A-01"),  # twice
        ([{"line": 1, "qty_ready": True}], "A-01"),
        ([{"line": 1, "qty_ready": 1}], "X" * 21),
        ("all", "A-01"),
    ],
)
def test_ready_rejects_bad_payloads_and_changes_nothing(hub, lines, slot):
    db = hub[0]
    oid = place(hub)["order"]["id"]
    before = order_change_data(db, oid)
    [res] = apply(db, LYON, ready(oid, lines, slot))
    assert res["status"] == "rejected" and res["reason"] == "invalid_payload", res
    assert order_change_data(db, oid) == before and not notes(db, oid, "ready")


def test_unknown_order_another_stores_order_and_wrong_state(hub):
    db = hub[0]
    oid = place(hub)["order"]["id"]
    full = [{"line": 1, "qty_ready": 2}, {"line": 2, "qty_ready": 1}]
    [unknown] = apply(db, LYON, ready("o-0000000000000000", full))
    assert unknown["reason"] == "unknown_order"
    for tx_type, payload in [
        ("order.ready", ready(oid, full)["payload"]),
        ("order.handover", handover(oid, [{"line": 1, "qty": 1}])["payload"]),
        ("order.expired", {"order_id": oid}),
        ("order.reminder", {"order_id": oid, "expires_at": NOW_ISO}),
    ]:
        [res] = apply(db, PARIS, tx(tx_type, payload))
        assert res["reason"] == "wrong_store", (tx_type, res)
    [res] = apply(db, LYON, handover(oid, [{"line": 1, "qty": 1}]))
    assert res["reason"] == "invalid_state"  # not ready yet
    [res] = apply(db, LYON, tx("order.reminder", {"order_id": oid, "expires_at": NOW_ISO}))
    assert res["reason"] == "invalid_state"
    assert get_order(db, oid)["status"] == "placed"


# --------------------------------------------------------------------------- hand-over


def test_partial_then_full_handover_never_more_than_ready(hub):
    db = hub[0]
    oid = make_ready(hub)["order"]["id"]
    first = handover(oid, [{"line": 1, "qty": 1}], collector="proxy", collector_name="Paul R.")
    [res] = apply(db, LYON, first)
    assert res["result"] == {"order_id": oid, "status": "partially_collected"}
    [again] = apply(db, LYON, first)
    assert again["status"] == "duplicate" and again["result"] == res["result"]

    [over] = apply(db, LYON, handover(oid, [{"line": 1, "qty": 2}]))
    assert over["status"] == "rejected" and over["reason"] == "invalid_payload"
    assert "at most 1" in over["message"]
    assert lines_of(db, oid)[1]["qty_collected"] == 1

    [rest] = apply(db, LYON, handover(oid, [{"line": 1, "qty": 1}, {"line": 2, "qty": 1}]))
    assert rest["result"]["status"] == "collected"
    [more] = apply(db, LYON, handover(oid, [{"line": 2, "qty": 1}]))
    assert more["reason"] == "invalid_state"
    assert [ln["qty_collected"] for ln in lines_of(db, oid).values()] == [2, 1]
    row = hdb.one(
        db,
        "SELECT collector, collector_name, method, staff FROM handovers WHERE handover_id = ?",
        [first["payload"]["handover_id"]],
    )
    # The proxy's name is kept sealed at rest (order_people), and opens with the key.
    sealed = row.pop("collector_name")
    assert sealed.startswith("pii1.") and "Paul" not in sealed
    assert order_people.collector_of(order_people.ring_of(db), sealed) == "Paul R."
    assert row == {"collector": "proxy", "method": "code", "staff": "sf-1"}


def test_a_partial_order_hands_over_only_what_was_ready(hub):
    db = hub[0]
    oid = make_ready(hub, short=True)["order"]["id"]  # line 1: 1 of 2 ready
    [over] = apply(db, LYON, handover(oid, [{"line": 1, "qty": 2}]))
    assert over["reason"] == "invalid_payload"
    [ok] = apply(db, LYON, handover(oid, [{"line": 1, "qty": 1}, {"line": 2, "qty": 1}]))
    assert ok["result"]["status"] == "collected"


def test_same_handover_id_under_two_transaction_ids_is_applied_once(hub):
    db = hub[0]
    oid = make_ready(hub)["order"]["id"]
    hid = str(uuid.uuid4())
    one = handover(oid, [{"line": 1, "qty": 2}], handover_id=hid)
    two = handover(oid, [{"line": 1, "qty": 2}], handover_id=hid)
    assert one["id"] != two["id"]
    results = apply(db, LYON, one, two)
    assert [r["status"] for r in results] == ["accepted", "accepted"]
    assert results[1]["result"] == {"order_id": oid, "status": "partially_collected"}
    assert lines_of(db, oid)[1]["qty_collected"] == 2
    assert db.execute("SELECT count(*) FROM handovers WHERE order_id = ?", [oid]).fetchone()[0] == 1
    other = make_ready(hub)["order"]["id"]
    [clash] = apply(db, LYON, handover(other, [{"line": 1, "qty": 1}], handover_id=hid))
    assert clash["reason"] == "conflict"


@pytest.mark.parametrize(
    "extra",
    [
        {"collector": "proxy"},  # a proxy needs a name
        {"collector": "friend"},
        {"method": "override"},  # needs a reason and a manager
        {"method": "override", "override_reason": "ID card seen"},
        {"method": "magic"},
        {"handover_id": "not-a-uuid"},
        {"staff": ""},
        {"lines": [{"line": 1, "qty": 0}]},
        {"lines": []},
    ],
)
def test_handover_validation(hub, extra):
    db = hub[0]
    oid = make_ready(hub)["order"]["id"]
    item = handover(oid, [{"line": 1, "qty": 1}])
    item["payload"].update(extra)
    [res] = apply(db, LYON, item)
    assert res["reason"] == "invalid_payload", res
    assert lines_of(db, oid)[1]["qty_collected"] == 0


def test_override_with_reason_and_manager_is_recorded(hub):
    db = hub[0]
    oid = make_ready(hub)["order"]["id"]
    item = handover(
        oid,
        [{"line": 1, "qty": 2}, {"line": 2, "qty": 1}],
        method="override",
        override_reason="Client connu, téléphone perdu",
        manager="sf-boss",
    )
    [res] = apply(db, LYON, item)
    assert res["result"]["status"] == "collected"
    row = db.execute("SELECT manager, override_reason FROM handovers WHERE order_id = ?", [oid])
    assert row.fetchone() == ("sf-boss", "Client connu, téléphone perdu")


# --------------------------------------------------------------------------- expiry


def test_expired_order_notifies_once_and_cannot_be_handed_over(hub):
    db = hub[0]
    oid = make_ready(hub)["order"]["id"]
    [res] = apply(db, LYON, tx("order.expired", {"order_id": oid}))
    assert res["result"] == {"order_id": oid, "status": "expired"}
    [again] = apply(db, LYON, tx("order.expired", {"order_id": oid}))  # another device
    assert again["status"] == "accepted" and again["result"]["status"] == "expired"
    assert len(notes(db, oid, "expired")) == 1
    [late] = apply(db, LYON, handover(oid, [{"line": 1, "qty": 1}]))
    assert late["status"] == "rejected" and late["reason"] == "invalid_state"
    assert "expired" in late["message"]
    assert get_order(db, oid)["expired_at"]


def test_a_collected_order_does_not_expire(hub):
    db = hub[0]
    oid = make_ready(hub, qtys=(1,))["order"]["id"]
    apply(db, LYON, handover(oid, [{"line": 1, "qty": 1}]))
    [res] = apply(db, LYON, tx("order.expired", {"order_id": oid}))
    assert res["reason"] == "invalid_state"
    assert get_order(db, oid)["status"] == "collected"


def test_reminder_is_recorded_once(hub):
    db = hub[0]
    made = make_ready(hub)
    oid = made["order"]["id"]
    for _ in range(2):
        [res] = apply(
            db, LYON, tx("order.reminder", {"order_id": oid, "expires_at": "2026-11-27T18:30:00Z"})
        )
        assert res["result"] == {"order_id": oid}
    [note] = notes(db, oid, "reminder")
    assert "27/11/2026" in note["body"] and made["pickup_code"] in note["body"]
    [bad] = apply(db, LYON, tx("order.reminder", {"order_id": oid, "expires_at": "demain"}))
    assert bad["reason"] == "invalid_payload"


# --------------------------------------------------------------------------- returns


def _ret(order_id, lines, refund="original_payment", return_id=None, **extra):
    payload = {
        "return_id": return_id or str(uuid.uuid4()),
        "order_id": order_id,
        "lines": lines,
        "reason": "trop petit",
        "refund": refund,
        "staff": "sf-1",
    }
    return tx("order.return", {**payload, **extra})


def test_returns_follow_collected_quantities_and_issue_store_credit(hub):
    db = hub[0]
    made = make_ready(hub)
    oid = made["order"]["id"]
    sku1, sku2 = (ln["sku"] for ln in made["order"]["lines"])
    [early] = apply(
        db, LYON, _ret(oid, [{"line": 1, "sku": sku1, "qty": 1, "condition": "resellable"}])
    )
    assert early["reason"] == "invalid_state"  # nothing collected yet
    apply(db, LYON, handover(oid, [{"line": 1, "qty": 2}, {"line": 2, "qty": 1}]))
    stock_before = level(db, sku1)

    credit = _ret(
        oid,
        [
            {"line": 1, "sku": sku1, "qty": 1, "condition": "resellable"},
            {"line": 1, "sku": sku1, "qty": 1, "condition": "damaged"},
        ],
        refund="store_credit",
    )
    [res] = apply(db, LYON, credit)
    assert res["status"] == "accepted", res
    assert res["result"]["refund"] == "store_credit"
    assert re.fullmatch(r"AV-[0-9A-Z]{4}-[0-9A-Z]{4}", res["result"]["credit_code"])
    assert lines_of(db, oid)[1]["qty_returned"] == 2
    assert level(db, sku1) == stock_before  # the store sends its own `returned` movement
    # The same return under another transaction id: the same answer, applied once.
    again = {**credit, "id": str(uuid.uuid4())}
    [dup] = apply(db, LYON, again)
    assert dup["status"] == "accepted" and dup["result"] == res["result"]
    assert lines_of(db, oid)[1]["qty_returned"] == 2

    cases = [
        [{"line": 1, "sku": sku1, "qty": 1, "condition": "resellable"}],  # all returned
        [{"line": 2, "sku": sku1, "qty": 1, "condition": "resellable"}],  # wrong sku
        [{"line": 2, "sku": sku2, "qty": 2, "condition": "resellable"}],  # too many
        [{"line": 2, "sku": sku2, "qty": 1, "condition": "wet"}],
    ]
    for lines in cases:
        [bad] = apply(db, LYON, _ret(oid, lines))
        assert bad["reason"] == "invalid_payload", (lines, bad)
    [ok] = apply(db, LYON, _ret(oid, [{"line": 2, "sku": sku2, "qty": 1, "condition": "damaged"}]))
    assert ok["result"] == {"return_id": ok["result"]["return_id"], "refund": "requested"}
    assert [n["kind"] for n in notes(db, oid, "returned")] == ["returned", "returned"]
    last = order_change_data(db, oid)
    assert [ln["qty_returned"] for ln in last["lines"]] == [2, 1]


def test_a_return_without_an_order_needs_a_manager_and_a_known_sku(hub):
    db = hub[0]
    [sku] = skus_in_stock(db, n=1)
    lines = [{"line": None, "sku": sku, "qty": 1, "condition": "resellable"}]
    [no_manager] = apply(db, LYON, _ret(None, lines))
    assert no_manager["reason"] == "invalid_payload"
    [res] = apply(db, LYON, _ret(None, lines, refund="store_credit", manager="sf-boss"))
    assert res["status"] == "accepted" and res["result"]["credit_code"].startswith("AV-")
    unknown = [{"line": None, "sku": "NOPE", "qty": 1, "condition": "resellable"}]
    [bad] = apply(db, LYON, _ret(None, unknown, manager="sf-boss"))
    assert bad["reason"] == "unknown_sku"
    with_line = [{"line": 1, "sku": sku, "qty": 1, "condition": "resellable"}]
    [bad] = apply(db, LYON, _ret(None, with_line, manager="sf-boss"))
    assert bad["reason"] == "invalid_payload"


def test_every_order_type_is_registered():
    assert {
        "order.ready",
        "order.handover",
        "order.expired",
        "order.reminder",
        "order.return",
    } <= set(transactions.HANDLERS)
    assert re.fullmatch(r"AV-[0-9A-Z]{4}-[0-9A-Z]{4}", store_credit.new_code())


def test_reminder_says_the_last_day_in_the_store_time_zone():
    from app.hub.domain.notifications import _last_day

    # Expires at the Paris midnight that ends 25/11 (23:00 UTC in winter).
    assert _last_day("2026-11-25T23:00:00Z") == "25/11/2026"
    # Summer time: midnight in Paris is 22:00 UTC.
    assert _last_day("2026-07-14T22:00:00Z") == "14/07/2026"


def test_order_changes_say_when_the_order_became_ready(hub):
    from app.hub.domain.orders import order_change_data

    db = hub[0]
    placed = place(hub)
    oid = placed["order"]["id"]
    assert placed["order"]["ready_at"] is None
    apply(db, LYON, ready(oid, [{"line": 1, "qty_ready": 2}, {"line": 2, "qty_ready": 1}]))
    data = json.loads(
        db.execute(
            "SELECT data FROM changes WHERE kind = 'order' AND key = ? ORDER BY seq DESC", [oid]
        ).fetchone()[0]
    )
    assert data["ready_at"] and data["ready_at"] == get_order(db, oid)["ready_at"]
    assert order_change_data(db, oid)["ready_at"] == data["ready_at"]


def test_shop_pages_show_the_shops_local_time():
    from app.hub.views.shop import fr_datetime

    assert fr_datetime("2026-11-19T07:30:00Z") == "19/11/2026 08:30"  # Paris, winter
    assert fr_datetime("2026-07-14T07:30:00Z") == "14/07/2026 09:30"  # Paris, summer
