"""Issue 15, "drain faster": a backlog leaves in batches, the store's own database work
done while the hub works (app/store/sync/push.py, _Stream): batch k in flight while
batch k-1's answers are recorded and batch k+1 is leased; one batch in flight at a time,
rows in outbox order, and nothing left leased when a flight fails."""

from __future__ import annotations

import json
import sqlite3

import pytest

from app.core import db as dbmod
from app.store.domain.stock import adjust
from app.store.sync import push
from app.store.sync.client import HubError
from app.store.sync.push import push_once

from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, hub_transactions, inprocess_client, wait_for


def _setup(hub_data, synced_store, n: int):
    db = dbmod.connect(dbmod.db_path(synced_store))
    skus = [
        r[0]
        for r in db.execute(
            "SELECT sku FROM stock_levels WHERE store_id = ? ORDER BY sku LIMIT 3", [LYON]
        )
    ]
    ids = [adjust(db, skus[i % 3], 1)["id"] for i in range(n)]
    client, link = inprocess_client(hub_data)
    return db, client, link, ids


def _where(db, ids: list[str], condition: str) -> int:
    marks = ",".join("?" * len(ids))
    return db.execute(
        f"SELECT count(*) FROM outbox WHERE id IN ({marks}) AND {condition}",  # noqa: S608
        ids,
    ).fetchone()[0]


def test_while_a_batch_is_in_flight_the_last_is_recorded_and_the_next_leased(
    hub_data, synced_store
):
    db, client, link, ids = _setup(hub_data, synced_store, 12)
    watcher = dbmod.connect(dbmod.db_path(synced_store))  # sees what is committed
    sent: list[list[str]] = []
    flying: list[int] = []
    most = [0]

    def before(request):
        flying.append(1)
        most[0] = max(most[0], len(flying))
        n = len(sent)
        sent.append([t["id"] for t in json.loads(request.body)["transactions"]])
        if 1 <= n <= 2:  # batches 2 and 3: the one before acknowledged, the next leased
            previous, following = ids[(n - 1) * 3 : n * 3], ids[(n + 1) * 3 : (n + 2) * 3]
            wait_for(
                lambda: (
                    _where(watcher, previous, "acked_at IS NOT NULL") == 3
                    and _where(watcher, following, "leased_by IS NOT NULL") == 3
                ),
                10,
                f"batch {n} recorded and batch {n + 2} leased while batch {n + 1} is in flight",
                step=0.01,
            )

    link.before = before
    link.after = lambda request, response: flying.pop()
    stats = push_once(db, client, batch_size=3)
    assert (stats.batches, stats.sent, stats.accepted) == (4, 12, 12)
    assert sent == [ids[i : i + 3] for i in range(0, 12, 3)]  # in outbox order
    assert most[0] == 1  # one batch in flight at a time
    assert _where(db, ids, "acked_at IS NOT NULL AND leased_by IS NULL") == 12
    assert set(hub_transactions(hub_data, ids).values()) == {1}
    watcher.close()


@pytest.mark.parametrize("fail_at", [1, 2])
def test_a_failed_flight_leaves_nothing_leased_and_keeps_the_answers_received(
    hub_data, synced_store, fail_at
):
    """The hub asks to wait (503, Retry-After) on batch ``fail_at + 1``: the batches
    answered before are acknowledged, the failed one and the one leased ahead go back
    to the queue, unleased, and go out next round, each applied once."""
    db, client, link, ids = _setup(hub_data, synced_store, 12)
    calls = [0]

    def before(request):
        link.fail_with = 503 if calls[0] == fail_at else None
        calls[0] += 1

    link.before = before
    with pytest.raises(HubError):
        push_once(db, client, batch_size=3)
    done = fail_at * 3
    assert _where(db, ids[:done], "acked_at IS NOT NULL") == done
    assert _where(db, ids[done:], "acked_at IS NULL AND leased_by IS NULL") == 12 - done
    link.before, link.fail_with = None, None
    assert push_once(db, client, batch_size=3).accepted == 12 - done
    assert set(hub_transactions(hub_data, ids).values()) == {1}


def test_payloads_leave_as_stored_and_the_body_is_the_one_json_would_write(hub_data, synced_store):
    """The push sends each payload as the JSON text the outbox keeps (not parsed and
    written again): the body is byte for byte what json.dumps of the parsed rows gives."""
    db, client, link, ids = _setup(hub_data, synced_store, 5)
    stored = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT id, type, occurred_at, payload FROM outbox WHERE acked_at IS NULL"
        )
    }
    bodies = []
    link.before = lambda request: bodies.append(request.body)
    assert push_once(db, client).accepted == 5
    expected = {
        "transactions": [
            {
                "id": i,
                "type": stored[i][0],
                "occurred_at": stored[i][1],
                "payload": json.loads(stored[i][2]),
            }
            for i in ids
        ]
    }
    assert bodies == [json.dumps(expected, separators=(",", ":")).encode()]


def test_a_batch_is_as_big_as_the_backlog_up_to_the_protocols_limit(hub_data, synced_store):
    db, client, link, ids = _setup(hub_data, synced_store, 1)
    sizes = []
    link.before = lambda request: sizes.append(len(json.loads(request.body)["transactions"]))
    push_once(db, client)
    assert sizes == [1]
    sizes.clear()
    skus = [r[0] for r in db.execute("SELECT sku FROM stock_levels WHERE store_id = ?", [LYON])]
    more = [adjust(db, skus[i % len(skus)], 1)["id"] for i in range(1100)]
    assert push_once(db, client).accepted == 1100
    assert sizes == [500, 500, 100]  # MAX_BATCH, the protocol's most per request
    assert set(hub_transactions(hub_data, more).values()) == {1}


def test_a_batch_stays_within_the_body_limit(hub_data, synced_store, monkeypatch):
    """Rows heavier than the body limit allows in one request are sent over several,
    oldest first, each body within the limit, each row applied once."""
    monkeypatch.setattr(push, "BATCH_BYTES", 3000)
    db, client, link, _ = _setup(hub_data, synced_store, 0)
    skus = [r[0] for r in db.execute("SELECT sku FROM stock_levels WHERE store_id = ?", [LYON])]
    ids = [adjust(db, skus[i % 3], 1, reason="é" * 200)["id"] for i in range(20)]
    bodies = []
    link.before = lambda request: bodies.append(request.body)
    assert push_once(db, client).accepted == 20
    assert len(bodies) > 3 and all(len(b) <= 3000 for b in bodies)
    assert [t["id"] for b in bodies for t in json.loads(b)["transactions"]] == ids
    assert _where(db, ids, "acked_at IS NOT NULL AND leased_by IS NULL") == 20
    assert set(hub_transactions(hub_data, ids).values()) == {1}


def test_a_failure_while_a_batch_is_in_flight_leaves_nothing_leased(
    hub_data, synced_store, monkeypatch
):
    """The store's own work during a flight fails (here the lease ahead, after the
    previous answers were recorded in the same transaction): all of it is rolled back,
    no row stays leased, and the next round sends what is left, each applied once."""
    db, client, _, ids = _setup(hub_data, synced_store, 9)
    real, calls = push.outbox.lease, [0]

    def lease(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:  # the first batch's lease, the second's, then this one
            raise sqlite3.OperationalError("disk I/O error")
        return real(*args, **kwargs)

    monkeypatch.setattr(push.outbox, "lease", lease)
    with pytest.raises(sqlite3.OperationalError):
        push_once(db, client, batch_size=3)
    assert _where(db, ids, "acked_at IS NULL AND leased_by IS NOT NULL") == 0
    monkeypatch.setattr(push.outbox, "lease", real)
    push_once(db, client, batch_size=3)
    assert _where(db, ids, "acked_at IS NOT NULL") == 9
    assert set(hub_transactions(hub_data, ids).values()) == {1}


def test_a_row_the_hub_left_unanswered_goes_again_before_any_younger_row(hub_data, synced_store):
    """The first batch's 2nd row gets an answer the store does not understand (a newer
    hub's status): it is sent again first, before the rows queued after it, and the
    batch leased ahead meanwhile is given back (rows leave in outbox order)."""
    db, client, link, ids = _setup(hub_data, synced_store, 9)
    sent: list[list[str]] = []

    def before(request):
        sent.append([t["id"] for t in json.loads(request.body)["transactions"]])

    def after(request, response):
        if len(sent) == 1:
            body = json.loads(response.content)
            for result in body["results"]:
                if result["id"] == ids[1]:
                    result["status"] = "deferred"
            response._content = json.dumps(body).encode()

    link.before, link.after = before, after
    stats = push_once(db, client, batch_size=3)
    assert sent[0] == ids[0:3]
    assert sent[1][0] == ids[1], sent  # the unanswered row first, nothing younger before
    flat = [i for batch in sent[1:] for i in batch]
    assert flat == sorted(flat, key=ids.index), sent  # then in outbox order
    assert _where(db, ids, "acked_at IS NOT NULL AND leased_by IS NULL") == 9
    assert stats.accepted + stats.duplicate == 9
    assert set(hub_transactions(hub_data, ids).values()) == {1}
