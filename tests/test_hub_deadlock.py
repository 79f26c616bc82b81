"""A batch of stock movements does its checks without the hub-wide write lock and takes
it before its first write (PostgreSQL): it waits for a writer holding that lock, never
deadlocks with one; and a batch the database aborts anyway is run again, applied once
(app/hub/protocol/transactions.py)."""

from __future__ import annotations

import logging
import threading
import time
import uuid

from app.demo import hub_seed
from app.hub import database as hdb
from app.hub.protocol import transactions
from app.hub.storage import open_database

from .pg import *  # noqa: F403

LYON = hub_seed.store_seed.DEMO_STORES[0]["id"]


def _waiting_on_advisory_lock(url: str) -> bool:
    db = hdb.connect(url)
    try:
        return bool(
            hdb.scalar(
                db,
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            )
        )
    finally:
        db.close()


def test_a_movement_waits_for_the_lock_holder_and_never_deadlocks(pg_database, tmp_path, caplog):
    db = open_database(pg_database)
    hub_seed.seed_hub(db, products=20)
    sku, qty0 = hdb.execute(
        db, "SELECT sku, qty FROM stock_levels WHERE store_id = ? ORDER BY sku LIMIT 1", [LYON]
    ).fetchone()
    db.close()

    # A writer holds the hub-wide lock...
    holder = hdb.connect(pg_database)
    holder.conn.execute("BEGIN")
    hdb.take_lock(holder, hdb.WRITE_LOCK)

    # ...while a store's batch comes for the same level: it waits for that lock before
    # it locks the level's row.
    poster = hdb.connect(pg_database)
    item = {
        "id": str(uuid.uuid4()),
        "type": "stock.movement",
        "occurred_at": "2026-11-22T14:02:00Z",
        "payload": {"sku": sku, "delta": -2, "kind": "adjusted", "reason": "test"},
    }
    got: dict = {}

    def post() -> None:
        try:
            got["results"] = transactions.apply_batch(poster, LYON, [item], data_dir=tmp_path)
        except BaseException as exc:  # noqa: BLE001
            got["error"] = exc

    caplog.set_level(logging.WARNING, logger="app.hub.protocol.transactions")
    thread = threading.Thread(target=post)
    thread.start()
    deadline = time.monotonic() + 20
    while not _waiting_on_advisory_lock(pg_database):
        assert time.monotonic() < deadline, "the batch never waited for the hub-wide lock"
        time.sleep(0.02)
    # The holder now writes the same row: were the batch holding it, this would be a
    # deadlock (PostgreSQL would abort one after a second); it is not.
    hdb.execute(
        holder,
        "UPDATE stock_levels SET qty = stock_levels.qty + 10 WHERE store_id = ? AND sku = ?",
        [LYON, sku],
    )
    holder.conn.execute("COMMIT")
    thread.join(timeout=30)
    poster.close()
    holder.close()

    assert "error" not in got, got.get("error")
    [result] = got["results"]
    assert result["status"] == "accepted" and result["result"]["qty"] == qty0 + 10 - 2
    assert not any("aborted by the database" in r.getMessage() for r in caplog.records)
    check = hdb.connect(pg_database)
    try:
        assert hdb.scalar(
            check, "SELECT qty FROM stock_levels WHERE store_id = ? AND sku = ?", [LYON, sku]
        ) == (qty0 + 10 - 2)
        assert (
            hdb.scalar(check, "SELECT count(*) FROM transactions WHERE id = ?", [item["id"]]) == 1
        )
    finally:
        check.close()


def test_a_batch_the_database_aborts_is_run_again_and_applied_once(
    pg_database, tmp_path, monkeypatch, caplog
):
    import psycopg

    db = open_database(pg_database)
    hub_seed.seed_hub(db, products=20)
    sku, qty0 = hdb.execute(
        db, "SELECT sku, qty FROM stock_levels WHERE store_id = ? ORDER BY sku LIMIT 1", [LYON]
    ).fetchone()
    real = transactions.apply_one
    calls = []

    def aborted_once(db_, store_id, item):
        result = real(db_, store_id, item)  # applied in the batch's transaction...
        calls.append(result)
        if len(calls) == 1:  # ...which the database then aborts, whole
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        return result

    monkeypatch.setattr(transactions, "apply_one", aborted_once)
    caplog.set_level(logging.WARNING, logger="app.hub.protocol.transactions")
    item = {
        "id": str(uuid.uuid4()),
        "type": "stock.movement",
        "occurred_at": "2026-11-22T14:02:00Z",
        "payload": {"sku": sku, "delta": -3, "kind": "adjusted", "reason": "test"},
    }
    [result] = transactions.apply_batch(db, LYON, [item], data_dir=tmp_path)
    assert len(calls) == 2 and result["status"] == "accepted"
    assert any("aborted by the database" in r.getMessage() for r in caplog.records)
    level = "SELECT qty FROM stock_levels WHERE store_id = ? AND sku = ?"
    assert hdb.scalar(db, level, [LYON, sku]) == qty0 - 3  # once, not twice
    assert hdb.scalar(db, "SELECT count(*) FROM transactions WHERE id = ?", [item["id"]]) == 1
    db.close()
