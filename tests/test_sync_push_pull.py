"""push_once, pull_once and the worker against the hub app in-process (fast, exact)."""

from __future__ import annotations

import json
import threading
import uuid

import requests

from app.core import db as dbmod
from app.store.domain import outbox
from app.store.domain.stock import adjust, levels
from app.store.sync import state
from app.store.sync.client import HubError
from app.store.sync.pull import pull_once
from app.store.sync.push import push_once
from app.store.sync.worker import SyncWorker

from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, hub_levels, hub_transactions, inprocess_client, wait_for


def _store(synced_store):
    return dbmod.connect(dbmod.db_path(synced_store))


def _skus(db, n=3):
    return [
        r[0]
        for r in db.execute(
            "SELECT sku FROM stock_levels WHERE store_id = ? ORDER BY sku LIMIT ?", [LYON, n]
        )
    ]


def test_push_acks_and_takes_the_hub_level(hub_data, synced_store):
    db = _store(synced_store)
    client, _ = inprocess_client(hub_data)
    sku = _skus(db, 1)[0]
    before = hub_levels(hub_data)[sku]
    m = adjust(db, sku, -1)
    stats = push_once(db, client)
    assert (stats.sent, stats.accepted, stats.parked) == (1, 1, 0)
    assert hub_levels(hub_data)[sku] == before - 1
    assert levels(db, [sku], clamp=False)[sku] == before - 1
    assert db.execute("SELECT acked_at IS NOT NULL FROM stock_movements WHERE id = ?", [m["id"]])
    assert outbox.stats(db)["depth"] == 0


def test_a_rejected_transaction_is_parked_and_never_blocks_the_others(hub_data, synced_store):
    db = _store(synced_store)
    client, _ = inprocess_client(hub_data)
    sku = _skus(db, 1)[0]
    first = adjust(db, sku, 1)["id"]
    # A movement the hub cannot know (its SKU is only in this store), between two good ones.
    bad = str(uuid.uuid4())
    with dbmod.write(db):
        db["outbox"].insert(
            {
                "id": bad,
                "type": "stock.movement",
                "occurred_at": "2026-11-22T14:02:00Z",
                "payload": json.dumps({"sku": "NOPE", "delta": 1, "kind": "adjusted"}),
                "created_at": "2026-11-22T14:02:00Z",
            }
        )
    last = adjust(db, sku, 1)["id"]
    stats = push_once(db, client)
    assert (stats.accepted, stats.parked) == (2, 1)
    assert hub_transactions(hub_data, [first, last]) == {first: 1, last: 1}
    [parked] = outbox.parked(db)
    assert (parked["id"], parked["parked_reason"]) == (bad, "unknown_sku")
    assert push_once(db, client).sent == 0  # parked: not sent again


def test_a_batch_the_hub_refuses_whole_is_split_to_find_the_bad_one(hub_data, synced_store):
    db = _store(synced_store)
    client, link = inprocess_client(hub_data)
    sku = _skus(db, 1)[0]
    ids = [adjust(db, sku, 1)["id"] for _ in range(5)]
    poison = ids[3]

    # A hub (or an adapter) that answers 400 to any batch holding the poison row.
    def before(request):
        if request.method == "POST" and poison.encode() in request.body:
            link.fail_with = 400
        else:
            link.fail_with = None

    link.before = before
    stats = push_once(db, client)
    assert (stats.accepted, stats.parked) == (4, 1)
    assert outbox.parked(db)[0]["id"] == poison
    counts = hub_transactions(hub_data, ids)
    assert counts == {i: int(i != poison) for i in ids}


def test_transport_failure_keeps_rows_and_raises_a_typed_error(hub_data, synced_store):
    db = _store(synced_store)
    client, link = inprocess_client(hub_data)
    adjust(db, _skus(db, 1)[0], 1)

    def refuse(request):
        raise requests.ConnectionError("refused")

    link.before = refuse
    try:
        push_once(db, client)
    except HubError as exc:
        assert exc.retryable and exc.status is None
    else:  # pragma: no cover
        raise AssertionError("push_once must raise")
    link.before = None
    assert outbox.stats(db)["depth"] == 1
    assert len(outbox.pending(db)) == 1  # the lease was given back
    assert push_once(db, client).accepted == 1


def test_two_workers_at_once_apply_each_row_once(hub_data, synced_store):
    db = _store(synced_store)
    skus = _skus(db)
    before = {s: hub_levels(hub_data)[s] for s in skus}
    ids = [adjust(db, skus[i % 3], 1)["id"] for i in range(60)]
    errors = []

    def flush(owner):
        try:
            client, _ = inprocess_client(hub_data)
            push_once(dbmod.connect(dbmod.db_path(synced_store)), client, owner=owner, batch_size=7)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=flush, args=(f"w{i}:1",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert set(hub_transactions(hub_data, ids).values()) == {1}
    assert {s: hub_levels(hub_data)[s] for s in skus} == {s: before[s] + 20 for s in skus}
    assert db.execute("SELECT max(attempts), count(*) FROM outbox").fetchone() == (1, 60)


def test_pull_resumes_from_the_saved_cursor(hub_data, synced_store):
    db = _store(synced_store)
    client, _ = inprocess_client(hub_data)
    cursor = state.cursor(db)
    stats = pull_once(db, client)
    assert stats.changes == 0 and stats.cursor == cursor
    # Another store's movement reaches us through the feed.
    paris, _ = inprocess_client(hub_data, store_id="st-p4x8vd")
    sku = _skus(db, 1)[0]
    paris.post_transactions(
        [
            {
                "id": str(uuid.uuid4()),
                "type": "stock.movement",
                "occurred_at": "2026-11-22T14:02:00Z",
                "payload": {"sku": sku, "delta": 3, "kind": "returned"},
            }
        ]
    )
    stats = pull_once(db, client)
    assert stats.changes == 1 and int(stats.cursor) > int(cursor)
    qty = db.execute(
        "SELECT qty FROM stock_levels WHERE store_id = 'st-p4x8vd' AND sku = ?", [sku]
    ).fetchone()[0]
    assert qty == hub_levels(hub_data, "st-p4x8vd")[sku]


def test_worker_sends_rows_written_by_another_process_and_backs_off(hub_data, synced_store):
    client, link = inprocess_client(hub_data)
    down = threading.Event()
    down.set()

    def refuse(request):
        if down.is_set():
            raise requests.ConnectionError("refused")

    link.before = refuse
    worker = SyncWorker(
        dbmod.db_path(synced_store), client, store_id=LYON, wait=1, push_interval=0.2
    ).start()
    try:
        db = _store(synced_store)
        m = adjust(db, _skus(db, 1)[0], 1)  # this connection plays `kiosk stock adjust`
        wait_for(
            lambda: (
                not state.is_online(db) and state.snapshot(db, hub_configured=True)["last_error"]
            ),
            5,
            "the failure to be recorded",
        )
        down.clear()
        state.request_retry(db)  # the staff button, through the database
        # Within 5 s although the backoff after failures may be up to 60 s.
        wait_for(lambda: outbox.stats(db)["depth"] == 0, 5, "the row to be sent")
        assert hub_transactions(hub_data, [m["id"]]) == {m["id"]: 1}
        wait_for(lambda: state.is_online(db), 5, "online")
    finally:
        worker.stop()
    assert worker.stopped
