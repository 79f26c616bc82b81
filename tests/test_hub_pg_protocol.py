"""The store protocol's write path (app/hub/protocol) and the demo seeder on both hub
backends: an SQLite file and a fresh database of the throwaway PostgreSQL cluster
(tests/pg.py), never a mock. What the web app's POST /api/v1/transactions does is
``transactions.apply_batch(db, store_id, items, data_dir=...)``: called here directly."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from app.core import clock
from app.demo import seed as store_seed
from app.demo.hub_orders import DEMO_ORDER_MIX, bulk_orders
from app.demo.hub_seed import seed_hub
from app.hub import database as hdb
from app.hub.domain import keys
from app.hub.domain.registry import insert_store
from app.hub.protocol import transactions
from app.hub.storage import open_database

from .pg import *  # noqa: F403

LYON, PARIS = store_seed.DEMO_STORES[0]["id"], store_seed.DEMO_STORES[1]["id"]
PRODUCTS = 40
TABLES = ("stores", "categories", "products", "variants", "stock_levels", "changes")


@pytest.fixture
def hub(target: str):
    """A migrated hub database seeded with the demo retailer (3 stores, 40 products)."""
    db = open_database(target)
    seed_hub(db, products=PRODUCTS)
    yield db
    db.close()


def _connect(target: str):
    return hdb.connect(target)


def _level(db, sku: str, store_id: str = LYON) -> int | None:
    return hdb.scalar(
        db, "SELECT qty FROM stock_levels WHERE store_id = ? AND sku = ?", [store_id, sku]
    )


def _skus(db, n: int, store_id: str = LYON) -> list[str]:
    # Ordered in Python: the order must not depend on the database's collation.
    found = [
        r["sku"]
        for r in hdb.rows(db, "SELECT sku FROM stock_levels WHERE store_id = ?", [store_id])
    ]
    return sorted(found)[:n]


def _movement(sku: str, delta: int = -1, tx_id: str | None = None) -> dict:
    return {
        "id": tx_id or str(uuid.uuid4()),
        "type": "stock.movement",
        "occurred_at": clock.now_iso(),
        "payload": {"sku": sku, "delta": delta, "kind": "sold"},
    }


def _order_request(sku: str, fulfilment: str) -> dict:
    payload = {
        "request_id": str(uuid.uuid4()),
        "fulfilment": fulfilment,
        "customer_name": "Inès Moreau",
        "customer_email": "ines.moreau@example.com",
        "lines": [{"sku": sku, "qty": 2}],
        "priced_at": datetime.now(UTC).isoformat(),
    }
    if fulfilment == "home":
        payload["address"] = {"line1": "12 rue de la Paix", "postcode": "69002", "city": "Lyon"}
    return {
        "id": str(uuid.uuid4()),
        "type": "order.request",
        "occurred_at": clock.now_iso(),
        "payload": payload,
    }


# --------------------------------------------------------------------------- the seeder


def test_seed_hub_loads_the_same_rows_on_both(tmp_path, pg_database):
    sqlite_db = open_database(str(tmp_path / "hub.db"))
    pg_db = open_database(pg_database)
    try:
        results = [seed_hub(db, products=PRODUCTS) for db in (sqlite_db, pg_db)]
        summary = [{k: v for k, v in r.items() if k != "stores"} for r in results]
        assert summary[0] == summary[1]
        assert summary[0]["products"] == PRODUCTS
        assert [s["id"] for s in results[0]["stores"]] == [s["id"] for s in results[1]["stores"]]
        counts = [
            {t: hdb.scalar(db, f"SELECT count(*) FROM {t}") for t in TABLES}  # noqa: S608
            for db in (sqlite_db, pg_db)
        ]
        assert counts[0] == counts[1]
        assert counts[0]["products"] == PRODUCTS and counts[0]["stores"] == 3
        # The same data, not only as many rows: same seed, same catalog and levels.
        for sql in (
            "SELECT pk, ref, category_id, brand, name_fr, price_cents FROM products",
            "SELECT sku, product_pk, ean, size, price_cents FROM variants",
            "SELECT store_id, sku, qty FROM stock_levels",
            "SELECT id, slug FROM categories",
        ):
            got = [
                sorted(tuple(r.values()) for r in hdb.rows(db, sql)) for db in (sqlite_db, pg_db)
            ]
            assert got[0] == got[1], sql
        with pytest.raises(ValueError, match="already seeded"):
            seed_hub(pg_db, products=5)
        # Explicit product ids were loaded into an identity column: the next default id
        # follows them (PostgreSQL: the sequence was moved past max(pk)).
        for db in (sqlite_db, pg_db):
            with hdb.write(db):
                pk = hdb.insert(
                    db,
                    "products",
                    {
                        "ref": "MNEW001",
                        "category_id": 1,
                        "brand": "X",
                        "name_fr": "n",
                        "name_en": "n",
                        "description_fr": "",
                        "description_en": "",
                        "price_cents": 100,
                    },
                    returning="pk",
                )
            assert pk == PRODUCTS + 1
    finally:
        sqlite_db.close()
        pg_db.close()


def test_seed_hub_with_demo_orders_and_bulk_orders(target, tmp_path):
    """What ``make demo`` and the benchmarks seed: demo web orders for every store (in
    the stores' registration order) and a bulk of open orders for one."""
    db = open_database(target)
    try:
        result = seed_hub(db, products=PRODUCTS, data_dir=tmp_path)
        assert result["orders"]["by_status"] == {k: 3 * n for k, n in DEMO_ORDER_MIX.items()}
        ready = result["orders"]["ready"]
        assert [r["store_id"] for r in ready[:: DEMO_ORDER_MIX["ready"]]] == [
            s["id"] for s in store_seed.DEMO_STORES
        ]
        bulk = bulk_orders(db, tmp_path, PARIS, 60, seed=1)
        assert bulk["last_seq"] - bulk["first_seq"] == 59
        assert hdb.scalar(
            db, "SELECT count(*) FROM orders WHERE store_id = ?", [PARIS]
        ) == 60 + sum(DEMO_ORDER_MIX.values())
    finally:
        db.close()


# --------------------------------------------------------------------------- batches


def test_a_batch_is_applied_item_by_item(hub, tmp_path):
    a, b = _skus(hub, 2)
    qty_a, qty_b = _level(hub, a), _level(hub, b)
    bad = _movement(b, 1)
    bad["payload"]["delta"] = "12"  # PostgreSQL would refuse a string in an integer column
    items = [
        _movement(a, -1),
        _movement("NO-SUCH-SKU", -1),
        bad,
        {"id": "not-a-uuid", "type": "stock.movement"},
        _movement(b, 3),
    ]
    results = transactions.apply_batch(hub, LYON, items, data_dir=tmp_path)
    assert [r["status"] for r in results] == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert [r.get("reason") for r in results[1:4]] == [
        "unknown_sku",
        "invalid_payload",
        "invalid_id",
    ]
    assert results[0]["result"]["qty"] == qty_a - 1 == _level(hub, a)
    assert results[4]["result"]["qty"] == qty_b + 3 == _level(hub, b)
    # The stock change is on the feed at the returned seq, with the new level.
    change = hdb.one(
        hub, "SELECT kind, key, data FROM changes WHERE seq = ?", [results[4]["result"]["seq"]]
    )
    assert change["kind"] == "stock" and change["key"] == f"{LYON}/{b}"
    assert json.loads(change["data"])["qty"] == qty_b + 3
    # Refusals of what was sent are kept under their id; nothing else was written.
    assert hdb.scalar(hub, "SELECT count(*) FROM transactions") == 4


def test_the_same_id_twice_is_a_duplicate_applied_once(hub, tmp_path):
    [sku] = _skus(hub, 1)
    before = _level(hub, sku)
    item = _movement(sku, -2)
    [first] = transactions.apply_batch(hub, LYON, [item], data_dir=tmp_path)
    [again] = transactions.apply_batch(hub, LYON, [item], data_dir=tmp_path)
    # In one batch too: the second sees the first's row in the same transaction.
    both = transactions.apply_batch(hub, LYON, [item, item], data_dir=tmp_path)
    assert first["status"] == "accepted"
    assert again == {
        "id": item["id"],
        "status": "duplicate",
        "original_status": "accepted",
        "result": first["result"],
    }
    assert both == [again, again]
    assert _level(hub, sku) == before - 2
    # The same id with another body, or from another store, is a conflict.
    other = dict(item, payload=dict(item["payload"], delta=-3))
    [conflict] = transactions.apply_batch(hub, LYON, [other], data_dir=tmp_path)
    [stolen] = transactions.apply_batch(hub, PARIS, [item], data_dir=tmp_path)
    assert conflict["reason"] == stolen["reason"] == "conflict"
    assert _level(hub, sku) == before - 2
    # A refusal is kept too: sent again, the same answer (a duplicate of a rejection).
    unknown = _movement("NO-SUCH-SKU")
    [refused] = transactions.apply_batch(hub, LYON, [unknown], data_dir=tmp_path)
    [refused_again] = transactions.apply_batch(hub, LYON, [unknown], data_dir=tmp_path)
    assert refused["reason"] == "unknown_sku"
    assert refused_again["original_status"] == "rejected"
    assert refused_again["reason"] == "unknown_sku"


def test_stock_movements_accumulate(hub, tmp_path):
    [sku] = _skus(hub, 1)
    before = _level(hub, sku)
    deltas = [5, -2, 7, -1]
    results = transactions.apply_batch(
        hub, LYON, [_movement(sku, d) for d in deltas], data_dir=tmp_path
    )
    assert [r["result"]["qty"] for r in results] == [
        before + sum(deltas[: i + 1]) for i in range(len(deltas))
    ]
    results += transactions.apply_batch(hub, LYON, [_movement(sku, 10)], data_dir=tmp_path)
    assert _level(hub, sku) == before + sum(deltas) + 10
    seqs = [r["result"]["seq"] for r in results]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # A store with no level yet for a sku starts from 0 (the upsert's insert branch).
    insert_store(hub, "st-newone", "Sportissimo Lille")
    [first] = transactions.apply_batch(hub, "st-newone", [_movement(sku, -3)], data_dir=tmp_path)
    assert first["result"]["qty"] == -3 == _level(hub, sku, "st-newone")
    assert _level(hub, sku) == before + sum(deltas) + 10  # Lyon's level untouched


def test_an_order_request_places_a_pickup_order_and_a_home_delivery(hub, tmp_path):
    keys.ensure_hub_key(hub, tmp_path)
    a, b = _skus(hub, 2)
    pickup, home = _order_request(a, "pickup"), _order_request(b, "home")
    results = transactions.apply_batch(hub, LYON, [pickup, home], data_dir=tmp_path)
    assert [r["status"] for r in results] == ["accepted", "accepted"], results
    order_id = results[0]["result"]["order_id"]
    order = hdb.one(
        hub, "SELECT store_id, status, pickup_token FROM orders WHERE id = ?", [order_id]
    )
    assert order["store_id"] == LYON and order["status"] == "placed" and order["pickup_token"]
    assert hdb.scalar(hub, "SELECT qty FROM order_lines WHERE order_id = ?", [order_id]) == 2
    delivery = hdb.one(
        hub,
        "SELECT origin_store_id, status FROM delivery_orders WHERE id = ?",
        [results[1]["result"]["delivery_id"]],
    )
    assert delivery == {"origin_store_id": LYON, "status": "requested"}
    # The same request under another transaction id: the first answer, nothing new.
    resent = dict(pickup, id=str(uuid.uuid4()))
    [again] = transactions.apply_batch(hub, LYON, [resent], data_dir=tmp_path)
    assert again == {"id": resent["id"], "status": "accepted", "result": results[0]["result"]}
    assert hdb.scalar(hub, "SELECT count(*) FROM orders") == 1
    assert hdb.scalar(hub, "SELECT count(*) FROM delivery_orders") == 1


def test_the_data_directory_is_required(pg_database):
    """A PostgreSQL database has no folder to find the signing key in: ``data_dir`` is
    a required argument (a pickup order is never signed with a guessed key); without it
    nothing is applied."""
    db = open_database(pg_database)
    try:
        seed_hub(db, products=5)
        [sku] = _skus(db, 1)
        with pytest.raises(TypeError, match="data_dir"):
            transactions.apply_batch(db, LYON, [_order_request(sku, "pickup")])
        assert hdb.scalar(db, "SELECT count(*) FROM orders") == 0
        assert hdb.scalar(db, "SELECT count(*) FROM transactions") == 0
    finally:
        db.close()


# --------------------------------------------------------------------------- concurrency


def test_the_same_ids_posted_at_once_by_four_connections_apply_once(target, hub, tmp_path):
    """Four connections (four hub workers' worth) post the same batch at the same moment:
    every id is accepted by exactly one of them, a duplicate for the others."""
    skus = _skus(hub, 5)
    before = {sku: _level(hub, sku) for sku in skus}
    items = [_movement(sku, -1) for sku in skus]
    conns = [_connect(target) for _ in range(4)]
    start = threading.Barrier(len(conns))
    answers: list[list[dict]] = [[] for _ in conns]
    errors: list[BaseException] = []

    def post(i: int) -> None:
        try:
            start.wait(timeout=10)
            answers[i] = transactions.apply_batch(conns[i], LYON, items, data_dir=tmp_path)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for conn in conns:
        conn.close()
    assert not errors, errors
    for k, item in enumerate(items):
        statuses = sorted(answers[i][k]["status"] for i in range(len(conns)))
        assert statuses == ["accepted", "duplicate", "duplicate", "duplicate"], item["id"]
    assert {sku: _level(hub, sku) for sku in skus} == {s: q - 1 for s, q in before.items()}


def _until_waiting(db) -> None:
    """PostgreSQL: until another session waits on a lock (seen in pg_stat_activity);
    SQLite, where it waits in its busy handler unseen: a moment."""
    if not hdb.is_pg(db):
        time.sleep(0.5)
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = hdb.scalar(
            db,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'",
        )
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("the batch never waited on the other writer's row")


def test_an_id_committed_by_a_writer_without_the_lock_is_answered_as_that_one(
    target, hub, tmp_path
):
    """The unique index is the last word: a writer that does not take the hub-wide lock
    (none does today) records an id while a batch applies the same id. The batch's item
    waits on the index, fails, is rolled back to its savepoint (effects included) and
    answers ``duplicate`` of the other's row; the rest of the batch still applies (on
    PostgreSQL the error did not abort the batch's transaction). On SQLite the batch waits
    for the other's write lock instead: the same answers."""
    a, b = _skus(hub, 2)
    qty_a, qty_b = _level(hub, a), _level(hub, b)
    item, after = _movement(a, -1), _movement(b, -1)
    digest = transactions.body_hash(item)
    other = _connect(target)
    batch = _connect(target)
    out: dict = {}

    def apply() -> None:
        try:
            out["results"] = transactions.apply_batch(batch, LYON, [item, after], data_dir=tmp_path)
        except BaseException as exc:  # noqa: BLE001 - reported below
            out["error"] = exc

    try:
        remembered = {"sku": a, "qty": 1234, "seq": 1}
        with hdb.write(other, lock=None):
            transactions._record(
                other, item["id"], LYON, item, digest, "accepted", None, remembered
            )
            worker = threading.Thread(target=apply)
            worker.start()
            _until_waiting(hub)  # on the unique index (PostgreSQL), or SQLite's write lock
            assert worker.is_alive()
        worker.join(timeout=20)
        assert "error" not in out, out.get("error")
        first, second = out["results"]
        assert first == {
            "id": item["id"],
            "status": "duplicate",
            "original_status": "accepted",
            "result": remembered,
        }
        assert second["status"] == "accepted"
        assert _level(hub, a) == qty_a  # the losing item's movement was rolled back
        assert _level(hub, b) == qty_b - 1
    finally:
        other.close()
        batch.close()
