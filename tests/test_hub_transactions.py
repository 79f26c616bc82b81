"""POST /api/v1/transactions against a real hub: exactly once, per-item results."""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from app.hub import database as hdb
from app.hub.protocol import common, transactions

from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import (
    BORDEAUX,
    LYON,
    PARIS,
    HubClient,
    hub_db,
    movement,
    store_secrets,
    validate,
)

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock


def _sku_and_level(data, store_id=LYON, offset=0):
    db = hub_db(data)
    try:
        return db.execute(
            "SELECT sku, qty FROM stock_levels WHERE store_id = ? ORDER BY sku LIMIT 1 OFFSET ?",
            [store_id, offset],
        ).fetchone()
    finally:
        db.close()


def _level(data, sku, store_id=LYON):
    db = hub_db(data)
    try:
        row = db.execute(
            "SELECT qty FROM stock_levels WHERE store_id = ? AND sku = ?", [store_id, sku]
        ).fetchone()
        return row[0] if row else None
    finally:
        db.close()


def _post(client, items):
    resp = client.post_transactions(items)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    validate(body, "TransactionResults")
    return body["results"]


def test_accepted_then_duplicate_then_conflict(hub_client, hub_server):
    sku, qty = _sku_and_level(hub_server.data)
    tx = movement(sku, -2)
    [first] = _post(hub_client, [tx])
    assert first["status"] == "accepted"
    assert first["result"]["sku"] == sku and first["result"]["qty"] == qty - 2
    assert first["result"]["seq"] > 0

    [again] = _post(hub_client, [tx])
    assert again == {
        "id": tx["id"],
        "status": "duplicate",
        "original_status": "accepted",
        "result": first["result"],
    }
    assert _level(hub_server.data, sku) == qty - 2

    changed = {**tx, "payload": {**tx["payload"], "delta": -3}}
    [conflict] = _post(hub_client, [changed])
    assert conflict["status"] == "rejected" and conflict["reason"] == "conflict"
    assert _level(hub_server.data, sku) == qty - 2


def test_the_stock_change_is_on_the_feed_at_the_returned_seq(hub_client, hub_server):
    sku, qty = _sku_and_level(hub_server.data)
    [res] = _post(hub_client, [movement(sku, 5)])
    page = hub_client.changes(since=res["result"]["seq"] - 1, limit=1).json()
    validate(page, "ChangesPage")
    [change] = page["changes"]
    assert change["seq"] == res["result"]["seq"]
    assert change["kind"] == "stock" and change["key"] == f"{LYON}/{sku}"
    assert change["data"]["qty"] == qty + 5 and change["data"]["store_id"] == LYON


def test_rejections_never_block_the_rest_of_the_batch(hub_client, hub_server):
    sku, qty = _sku_and_level(hub_server.data)
    missing = movement(sku)
    del missing["payload"]["kind"]
    bad_delta = movement(sku)
    bad_delta["payload"]["delta"] = "1"
    unknown_type = {**movement(sku), "type": "teleport"}
    bad_id = {**movement(sku), "id": "42"}
    no_id = movement(sku)
    del no_id["id"]
    no_date = movement(sku)
    no_date["occurred_at"] = "yesterday"
    items = [
        movement(sku, -1),
        missing,
        movement("NO-SUCH-SKU", -1),
        bad_delta,
        unknown_type,
        movement(sku, -1, store_id=PARIS),
        bad_id,
        no_id,
        no_date,
        movement(sku, -1),
    ]
    results = _post(hub_client, items)
    statuses = [(r["status"], r.get("reason")) for r in results]
    assert statuses == [
        ("accepted", None),
        ("rejected", "invalid_payload"),
        ("rejected", "unknown_sku"),
        ("rejected", "invalid_payload"),
        ("rejected", "unknown_type"),
        ("rejected", "wrong_store"),
        ("rejected", "invalid_id"),
        ("rejected", "invalid_id"),
        ("rejected", "invalid_payload"),
        ("accepted", None),
    ]
    assert [r["id"] for r in results] == [i.get("id") for i in items]
    assert all(r["message"] for r in results if r["status"] == "rejected")
    assert results[-1]["result"]["qty"] == qty - 2
    assert _level(hub_server.data, sku) == qty - 2
    # Nothing of the rejected ones was applied anywhere.
    assert _level(hub_server.data, sku, PARIS) == _sku_and_level(hub_server.data, PARIS)[1]
    # A retried rejection gets the original answer, and is still not applied.
    [again] = _post(hub_client, [items[2]])
    assert again["status"] == "duplicate" and again["original_status"] == "rejected"
    assert again["reason"] == "unknown_sku"


def test_a_level_missing_at_the_hub_starts_at_zero(hub_client, hub_server):
    sku, _ = _sku_and_level(hub_server.data)
    db = hub_db(hub_server.data)
    with hdb.write(db):
        db.execute("DELETE FROM stock_levels WHERE store_id = ? AND sku = ?", [LYON, sku])
    db.close()
    [res] = _post(hub_client, [movement(sku, 3, kind="returned")])
    assert res["result"]["qty"] == 3


def test_the_same_id_from_another_store_is_a_conflict(hub_client, hub_server):
    sku, _ = _sku_and_level(hub_server.data)
    tx = movement(sku)
    assert _post(hub_client, [tx])[0]["status"] == "accepted"
    paris = HubClient(hub_server.url, PARIS, store_secrets(hub_server.data)[PARIS])
    [res] = _post(paris, [tx])
    assert res["status"] == "rejected" and res["reason"] == "conflict"
    assert "result" not in res


def test_an_id_repeated_inside_one_batch_applies_once(hub_client, hub_server):
    sku, qty = _sku_and_level(hub_server.data)
    tx = movement(sku, -1)
    results = _post(hub_client, [tx, tx])
    assert [r["status"] for r in results] == ["accepted", "duplicate"]
    assert _level(hub_server.data, sku) == qty - 1


def test_batch_limits_and_malformed_bodies(hub_client, hub_server):
    sku, qty = _sku_and_level(hub_server.data)
    too_many = [movement(sku) for _ in range(501)]
    resp = hub_client.post_transactions(too_many)
    assert resp.status_code == 413 and resp.json()["error"] == "batch_too_large"
    validate(resp.json(), "Error")
    for body in (b"not json", b'{"transactions": 3}', b"[]", b'{"transactions": [1]}', b"NaN"):
        resp = hub_client.request("POST", "/api/v1/transactions", body)
        assert resp.status_code == 400, body
        assert resp.json()["error"] == "bad_request"
        validate(resp.json(), "Error")
    assert _level(hub_server.data, sku) == qty


def test_a_full_batch_of_500_is_applied(hub_client, hub_server):
    sku, qty = _sku_and_level(hub_server.data)
    results = _post(hub_client, [movement(sku, 1) for _ in range(500)])
    assert {r["status"] for r in results} == {"accepted"}
    assert [r["result"]["qty"] for r in results] == list(range(qty + 1, qty + 501))
    assert _level(hub_server.data, sku) == qty + 500


def test_twenty_threads_posting_one_id_apply_it_once(hub_client, hub_server, hub_factory):
    # Two hub processes on the same database, 10 threads each: exactly-once must hold
    # across threads and across processes.
    second = hub_factory(hub_server.data)
    secret = hub_client.secret
    sku, qty = _sku_and_level(hub_server.data)
    tx = movement(sku, -1)
    barrier = threading.Barrier(20)
    answers: list[dict] = []
    errors: list[BaseException] = []

    def post(url):
        try:
            client = HubClient(url, LYON, secret)
            barrier.wait(timeout=10)
            resp = client.post_transactions([tx], timeout=20)
            answers.append(resp.json()["results"][0])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [
        threading.Thread(target=post, args=(url,))
        for url in [hub_server.url] * 10 + [second.url] * 10
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    statuses = sorted(a["status"] for a in answers)
    assert statuses == ["accepted"] + ["duplicate"] * 19
    assert len({json.dumps(a["result"], sort_keys=True) for a in answers}) == 1
    assert _level(hub_server.data, sku) == qty - 1
    db = hub_db(hub_server.data)
    assert (
        db.execute("SELECT count(*) FROM transactions WHERE id = ?", [tx["id"]]).fetchone()[0] == 1
    )
    n_changes = db.execute(
        "SELECT count(*) FROM changes WHERE kind = 'stock' AND key = ? AND seq > ?",
        [f"{LYON}/{sku}", 0],
    ).fetchone()[0]
    db.close()
    assert n_changes == 2  # the seeded level and this one movement


# --- in process: the savepoint per item ---------------------------------------------


def test_a_failing_item_is_never_half_applied(hub_data, monkeypatch):
    """An item whose handler fails after writing leaves no trace; the others apply."""
    db = hub_db(hub_data)
    sku, qty = db.execute(
        "SELECT sku, qty FROM stock_levels WHERE store_id = ? LIMIT 1", [BORDEAUX]
    ).fetchone()
    real = transactions.HANDLERS["stock.movement"]

    def half_then_fail(db_, store_id, payload, tx_id):
        real(db_, store_id, payload, tx_id)  # stock moved and a change appended...
        if payload.get("reason") == "explode":
            raise common.Rejected("invalid_payload", "failed after writing")
        return real(db_, store_id, {**payload, "delta": 0}, tx_id)

    monkeypatch.setitem(transactions.HANDLERS, "stock.movement", half_then_fail)
    seq_before = db.execute("SELECT max(seq) FROM changes").fetchone()[0]
    items = [movement(sku, -1, reason="explode"), movement(sku, -2)]
    results = transactions.apply_batch(db, BORDEAUX, items, data_dir=hub_data)
    assert [r["status"] for r in results] == ["rejected", "accepted"]
    level = db.execute(
        "SELECT qty FROM stock_levels WHERE store_id = ? AND sku = ?", [BORDEAUX, sku]
    ).fetchone()[0]
    assert level == qty - 2
    # The accepted item appended 2 changes (its two handler calls); the failed one none.
    # (Counted, not read off max(seq): PostgreSQL does not give back a seq drawn in a
    # rolled-back savepoint, SQLite's AUTOINCREMENT does; either leaves no change.)
    new = db.execute("SELECT data FROM changes WHERE seq > ? ORDER BY seq", [seq_before])
    assert [json.loads(d)["tx"] for (d,) in new.fetchall()] == [items[1]["id"]] * 2
    statuses = dict(db.execute("SELECT id, status FROM transactions").fetchall())
    assert statuses == {items[0]["id"]: "rejected", items[1]["id"]: "accepted"}
    db.close()


# Fixed ids: the test ids must be the same in every pytest-xdist worker.
@pytest.mark.parametrize(
    "text",
    [
        "3E7153AF-6A4C-44EA-AFFF-7DDB2F8BF48D",
        "{05a8024c-4302-4afc-9fbd-18fab4a3e88f}",
        "d3c6e53775b642a1bfd1adf276f1746a",
    ],
)
def test_uuid_spellings_are_one_id(text):
    assert common.parse_id(text) == str(uuid.UUID(text))


def test_body_hash_ignores_key_order_and_id():
    a = {"id": "x", "type": "t", "occurred_at": "z", "payload": {"a": 1, "b": 2}}
    b = {"payload": {"b": 2, "a": 1}, "occurred_at": "z", "type": "t", "id": "y"}
    assert transactions.body_hash(a) == transactions.body_hash(b)
    assert transactions.body_hash(a) != transactions.body_hash({**a, "occurred_at": "w"})
