"""Stock levels: the hub's level plus this store's unacknowledged movements."""

from __future__ import annotations

import json

import pytest

from app.store.domain import stock
from app.store.domain.stock import UnknownCode, adjust, levels

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock


def _variant(db):
    return db.execute(
        """SELECT v.sku, v.ean, l.qty FROM variants v
           JOIN stock_levels l ON l.sku = v.sku
           JOIN stores s ON s.id = l.store_id AND s.is_self = 1
           WHERE l.qty >= 5 LIMIT 1"""
    ).fetchone()


def test_level_is_hub_level_plus_pending_movements(store_db):
    sku, _, qty = _variant(store_db)
    adjust(store_db, sku, -2)
    adjust(store_db, sku, 1)
    assert levels(store_db, [sku])[sku] == qty - 1


def test_acknowledged_movements_are_no_longer_added(store_db):
    sku, _, qty = _variant(store_db)
    adjust(store_db, sku, -3)
    # Once the hub has counted the movement, its level already includes it.
    store_db.execute("UPDATE stock_movements SET acked_at = '2026-01-01T00:00:00Z'")
    assert levels(store_db, [sku])[sku] == qty


def test_adjust_by_barcode_and_by_count(store_db):
    sku, ean, qty = _variant(store_db)
    result = adjust(store_db, ean, 2, counted=True)
    assert result["sku"] == sku
    assert result["delta"] == 2 - qty
    assert levels(store_db, [sku])[sku] == 2


def test_adjust_writes_movement_and_outbox_together(store_db):
    sku, _, _ = _variant(store_db)
    result = adjust(store_db, sku, -1, reason="damaged")
    row = store_db.execute(
        "SELECT type, payload FROM outbox WHERE id = ?", [result["id"]]
    ).fetchone()
    assert row[0] == "stock.movement"
    assert json.loads(row[1])["delta"] == -1
    assert (
        store_db.execute(
            "SELECT count(*) FROM stock_movements WHERE id = ?", [result["id"]]
        ).fetchone()[0]
        == 1
    )


def test_failed_adjust_leaves_nothing_behind(store_db, monkeypatch):
    sku, _, qty = _variant(store_db)
    before_outbox = store_db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def boom(*a, **k):
        raise RuntimeError("disk full")

    # Fail after the movement is written but before the transaction commits.
    monkeypatch.setattr(stock, "self_store_id", boom)
    with pytest.raises(RuntimeError):
        adjust(store_db, sku, -1)
    assert store_db.execute("SELECT count(*) FROM outbox").fetchone()[0] == before_outbox
    assert store_db.execute("SELECT count(*) FROM stock_movements").fetchone()[0] == 0
    assert levels(store_db, [sku])[sku] == qty


def test_unknown_code(store_db):
    with pytest.raises(UnknownCode):
        adjust(store_db, "nope", 1)


def test_every_stock_change_bumps_the_version(store_db):
    sku, _, _ = _variant(store_db)
    v0 = stock.stock_version(store_db)
    adjust(store_db, sku, 1)
    assert stock.stock_version(store_db) == v0 + 1


def test_shown_level_is_never_negative(store_db):
    sku, _, qty = _variant(store_db)
    adjust(store_db, sku, -(qty + 5))
    assert levels(store_db, [sku])[sku] == 0
    assert levels(store_db, [sku], clamp=False)[sku] == -5


def test_badges():
    assert [stock.badge(q) for q in (0, 1, 2, 3)] == ["out", "low", "low", "in"]


def test_a_movement_the_hub_refused_is_not_counted(store_db):
    from app.store.domain import outbox

    sku, _, qty = _variant(store_db)
    bad = adjust(store_db, sku, -2)
    outbox.park(store_db, bad["id"], "unknown_sku", "no such variant at the hub")
    assert levels(store_db, [sku])[sku] == qty


def test_corrections_outside_what_the_hub_accepts_are_refused_locally(store_db):
    sku, _, _ = _variant(store_db)
    with pytest.raises(ValueError, match="at most"):
        adjust(store_db, sku, 2_000_000)
    with pytest.raises(ValueError, match="reason"):
        adjust(store_db, sku, 1, reason="x" * 501)
    with pytest.raises(ValueError, match="negative"):
        adjust(store_db, sku, -3, counted=True)
    assert store_db["outbox"].count == 0
