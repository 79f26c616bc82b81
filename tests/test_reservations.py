"""In-store reservations (app/store/domain/reservations.py): stock held at once and released exactly
once, every movement in the outbox with it, tickets that cannot be forged. No hub runs
in these tests: reserving works offline by design."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from app.core import db as dbmod
from app.store.domain import reservation_codes as codes
from app.store.domain import reservations as res
from app.store.domain.reservations import ReservationError
from app.store.domain.stock import adjust, levels, stock_version

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def _stocked(db, n: int = 3, at_least: int = 4) -> list[str]:
    """SKUs of ``n`` different products with at least ``at_least`` units here."""
    rows = db.execute(
        """SELECT v.sku FROM variants v
           JOIN stock_levels l ON l.sku = v.sku
           JOIN stores s ON s.id = l.store_id AND s.is_self = 1
           WHERE l.qty >= ? AND v.rowid IN (SELECT min(rowid) FROM variants GROUP BY product_pk)
           ORDER BY v.sku LIMIT ?""",
        [at_least, n],
    ).fetchall()
    assert len(rows) == n
    return [r[0] for r in rows]


def _set_level(db, sku: str, qty: int) -> None:
    adjust(db, sku, qty, counted=True, reason="test shelf count")


def _movements(db, sku: str | None = None) -> list[tuple]:
    sql = "SELECT sku, delta, kind FROM stock_movements WHERE kind IN ('reserved', 'released')"
    params: list = []
    if sku:
        sql += " AND sku = ?"
        params.append(sku)
    return db.execute(sql + " ORDER BY rowid", params).fetchall()


def _state(db) -> dict:
    return {
        t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
        for t in ("reservations", "reservation_lines", "stock_movements", "outbox", "audit_log")
    }


def test_reserving_lowers_the_level_at_once_with_outbox_rows(store_db):
    a, b, _ = _stocked(store_db)
    before = levels(store_db, [a, b])
    version = stock_version(store_db)

    r = res.create(store_db, [(a, 2), (b, 1)], device="kiosk-1", now=NOW)

    assert levels(store_db, [a, b]) == {a: before[a] - 2, b: before[b] - 1}
    assert stock_version(store_db) > version  # open kiosk pages hear of it
    assert r["status"] == "held" and r["unavailable"] == []
    assert r["id"].startswith("r-") and len(r["id"]) == 18
    assert r["code"].startswith("R-") and len(r["code"]) == 6
    assert r["created_at"] == "2026-11-21T09:00:00Z"
    assert r["expires_at"] == "2026-11-21T11:00:00Z"  # two hours by default
    assert {(ln["sku"], ln["qty"]) for ln in r["lines"]} == {(a, 2), (b, 1)}
    line = r["lines"][0]
    for key in ("name_fr", "name_en", "size", "colour_fr", "colour_en", "ref", "category"):
        assert line[key], key
    # Each line's movement went into the outbox in the same transaction, for the hub.
    for ln in r["lines"]:
        kind, payload = store_db.execute(
            "SELECT type, payload FROM outbox WHERE id = ? AND acked_at IS NULL",
            [ln["movement_id"]],
        ).fetchone()
        body = json.loads(payload)
        assert kind == "stock.movement"
        assert (body["sku"], body["delta"], body["kind"]) == (ln["sku"], -ln["qty"], "reserved")
    actions = [r[0] for r in store_db.execute("SELECT action FROM audit_log").fetchall()]
    assert actions[-1] == "reservation.created"


def test_partial_hold_and_lines_with_nothing_here(store_db):
    a, b, c = _stocked(store_db)
    _set_level(store_db, a, 1)
    _set_level(store_db, b, 0)

    r = res.create(store_db, [(a, 3), (b, 2), (c, 1), (c, 1)], now=NOW)

    assert {(ln["sku"], ln["qty"]) for ln in r["lines"]} == {(a, 1), (c, 2)}
    assert r["unavailable"] == [
        {"sku": a, "wanted": 3, "held": 1},
        {"sku": b, "wanted": 2, "held": 0},
    ]
    assert levels(store_db, [a, b])[a] == 0
    assert _movements(store_db, b) == []


def test_nothing_available_writes_nothing(store_db):
    a, b, _ = _stocked(store_db)
    _set_level(store_db, a, 0)
    _set_level(store_db, b, 0)
    before = _state(store_db)
    with pytest.raises(ReservationError) as exc:
        res.create(store_db, [(a, 1), (b, 2), ("NO-SUCH-SKU", 1)], now=NOW)
    assert exc.value.code == "nothing_available"
    assert _state(store_db) == before


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [("", 1)],
        [("X", 0)],
        [("X", -1)],
        [("X", 100)],
        [("X", True)],
        [("X",)],
        "X",
        [("X", 1)] * 51,
    ],
)
def test_malformed_lines_refused(store_db, lines):
    before = _state(store_db)
    with pytest.raises(ReservationError) as exc:
        res.create(store_db, lines)
    assert exc.value.code == "bad_lines"
    assert _state(store_db) == before


def test_the_last_unit_is_held_once_by_two_kiosks_at_once(store_data, store_db):
    (sku,) = _stocked(store_db, 1)
    _set_level(store_db, sku, 1)
    results, barrier = [], threading.Barrier(4)

    def kiosk():
        conn = dbmod.connect(dbmod.db_path(store_data))
        barrier.wait()
        try:
            results.append(res.create(conn, [(sku, 1)])["lines"][0]["qty"])
        except ReservationError as exc:
            results.append(exc.code)
        finally:
            conn.close()

    threads = [threading.Thread(target=kiosk) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=str) == [1] + ["nothing_available"] * 3
    assert levels(store_db, [sku], clamp=False)[sku] == 0


def test_release_puts_units_back_exactly_once(store_db):
    a, b, _ = _stocked(store_db)
    before = levels(store_db, [a, b])
    r = res.create(store_db, [(a, 2), (b, 1)], now=NOW)

    done = res.release(store_db, r["id"], staff_id=None, device="kiosk-1", reason="changed mind")

    assert done["status"] == "released" and done["closed_at"]
    assert levels(store_db, [a, b]) == before
    assert sorted(_movements(store_db)) == sorted(
        [(a, -2, "reserved"), (b, -1, "reserved"), (a, 2, "released"), (b, 1, "released")]
    )
    with pytest.raises(ReservationError) as exc:
        res.release(store_db, r["id"], staff_id=None, device="kiosk-1")
    assert exc.value.code == "not_held"
    with pytest.raises(ReservationError) as exc:
        res.collect(store_db, r["id"], staff_id="s-1", device="tablet")
    assert exc.value.code == "not_held"
    assert levels(store_db, [a, b]) == before
    with pytest.raises(ReservationError) as exc:
        res.release(store_db, "r-aaaaaaaaaaaaaaaa", staff_id=None, device="")
    assert exc.value.code == "not_found"


def test_collect_keeps_the_units_out_and_writes_no_movement(store_db):
    (a,) = _stocked(store_db, 1)
    before = levels(store_db, [a])[a]
    r = res.create(store_db, [(a, 2)], now=NOW)
    movements = len(_movements(store_db))

    done = res.collect(store_db, r["id"], staff_id="s-1", device="tablet")

    assert done["status"] == "collected" and done["closed_by"] == "s-1"
    assert levels(store_db, [a])[a] == before - 2
    assert len(_movements(store_db)) == movements
    with pytest.raises(ReservationError) as exc:
        res.release(store_db, r["id"], staff_id="s-1", device="tablet")
    assert exc.value.code == "not_held"
    assert res.expire_due(store_db, NOW + timedelta(days=1)) == 0
    assert levels(store_db, [a])[a] == before - 2


def test_expiry_releases_once_and_only_when_due(store_db):
    a, b, _ = _stocked(store_db)
    before = levels(store_db, [a, b])
    short = res.create(store_db, [(a, 1)], hold_minutes=30, now=NOW)
    long = res.create(store_db, [(b, 1)], now=NOW)

    assert res.expire_due(store_db, NOW + timedelta(minutes=29)) == 0
    assert res.expire_due(store_db, NOW + timedelta(minutes=30)) == 1
    assert res.get(store_db, short["id"])["status"] == "expired"
    assert res.get(store_db, long["id"])["status"] == "held"
    assert levels(store_db, [a, b]) == {a: before[a], b: before[b] - 1}
    assert res.expire_due(store_db, NOW + timedelta(minutes=30)) == 0  # idempotent
    assert res.expire_due(store_db, NOW + timedelta(hours=3)) == 1
    assert levels(store_db, [a, b]) == before
    assert _movements(store_db, a) == [(a, -1, "reserved"), (a, 1, "released")]
    actions = [r[0] for r in store_db.execute("SELECT action FROM audit_log").fetchall()]
    assert actions.count("reservation.expired") == 2


def test_two_expiry_runs_at_once_release_each_reservation_once(store_data, store_db):
    skus = _stocked(store_db, 3)
    before = levels(store_db, skus)
    made = [res.create(store_db, [(sku, 1)], hold_minutes=5, now=NOW) for sku in skus * 4]
    later = NOW + timedelta(hours=1)
    counts, barrier = [], threading.Barrier(2)

    def timer():
        conn = dbmod.connect(dbmod.db_path(store_data))
        barrier.wait()
        try:
            counts.append(res.expire_due(conn, later))
        finally:
            conn.close()

    threads = [threading.Thread(target=timer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == len(made)
    released = store_db.execute(
        "SELECT count(*) FROM stock_movements WHERE kind = 'released'"
    ).fetchone()[0]
    assert released == len(made)
    assert levels(store_db, skus) == before


def test_release_after_the_hub_counted_the_hold(store_db):
    # Deltas, not overwrites: once the hub acknowledged the reserved movement its level
    # already includes it, and the release brings the level back up from there.
    (a,) = _stocked(store_db, 1)
    before = levels(store_db, [a])[a]
    r = res.create(store_db, [(a, 2)], now=NOW)
    with dbmod.write(store_db):
        store_db.execute(
            "UPDATE stock_movements SET acked_at = '2026-11-21T09:00:01Z' WHERE id = ?",
            [r["lines"][0]["movement_id"]],
        )
        store_db.execute(
            "UPDATE stock_levels SET qty = qty - 2 WHERE sku = ? AND store_id = "
            "(SELECT id FROM stores WHERE is_self = 1)",
            [a],
        )
    assert levels(store_db, [a])[a] == before - 2
    res.release(store_db, r["id"], staff_id=None, device="")
    assert levels(store_db, [a])[a] == before


def test_lists_held_by_expiry_and_closed_today(store_db):
    a, b, c = _stocked(store_db)
    later = res.create(store_db, [(a, 1)], hold_minutes=90, now=NOW)
    sooner = res.create(store_db, [(b, 1)], hold_minutes=20, now=NOW)
    gone = res.create(store_db, [(c, 1)], now=NOW)
    res.release(store_db, gone["id"], staff_id=None, device="")

    held = res.list_reservations(store_db, "held", now=NOW + timedelta(minutes=25))
    assert [r["id"] for r in held] == [sooner["id"], later["id"]]
    assert held[0]["overdue"] and held[0]["minutes_left"] == -5
    assert not held[1]["overdue"] and held[1]["minutes_left"] == 65
    assert held[1]["lines"][0]["sku"] == a
    closed = res.list_reservations(store_db, "closed_today")
    assert [r["id"] for r in closed] == [gone["id"]]
    assert res.count_held(store_db) == 2
    with pytest.raises(ValueError):
        res.list_reservations(store_db, "everything")


def test_ticket_token_and_scans(store_db, tmp_path):
    (a,) = _stocked(store_db, 1)
    r = res.create(store_db, [(a, 1)], now=NOW)
    token = codes.ticket_token(store_db, r["id"])
    assert token == r["token"]
    prefix, rid, mac = token.split(".")
    assert (prefix, rid) == ("KR1", r["id"]) and len(mac) == 26
    # Nothing about the shopper in it: the id, and the MAC.
    assert token == f"KR1.{r['id']}.{mac}"

    assert res.find_by_scan(store_db, token)["id"] == r["id"]
    assert res.find_by_scan(store_db, token.upper())["id"] == r["id"]  # scanner case
    assert res.find_by_scan(store_db, r["code"].lower())["id"] == r["id"]
    assert res.find_by_scan(store_db, r["code"].replace("-", ""))["id"] == r["id"]
    assert res.find_by_scan(store_db, " " + r["code"][2:] + " ")["id"] == r["id"]
    assert res.find_by_scan(store_db, r["id"])["id"] == r["id"]
    unused = next(c for c in ("R-2222", "R-3333") if c != r["code"])
    assert res.find_by_scan(store_db, unused) is None
    assert res.find_by_scan(store_db, "3760000000017") is None
    assert res.find_by_scan(store_db, "") is None

    other = res.create(store_db, [(a, 1)], now=NOW)
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    forged = [
        f"KR1.{rid}.{flipped}",
        f"KR1.{other['id']}.{mac}",  # a MAC moved to another reservation
        f"KR1.{rid}.{mac[:-2]}",
        f"KR1.{rid}",
        "KR1.x.y",
        f"KR1.{rid}.{mac}.extra",
    ]
    for bad in forged:
        with pytest.raises(ReservationError) as exc:
            res.find_by_scan(store_db, bad)
        assert exc.value.code == "bad_token", bad

    # Another store's key does not verify this store's tickets.
    elsewhere = dbmod.connect(tmp_path / "other.db")
    from app.store.migrations import migrate

    migrate(elsewhere)
    with pytest.raises(codes.BadTicket):
        codes.verify_token(elsewhere, token)
    with pytest.raises(ReservationError) as exc:
        res.find_by_scan(elsewhere, token)
    assert exc.value.code == "bad_token"
    assert codes.ticket_token(elsewhere, r["id"]) != token


def test_reserving_works_offline_the_hub_learns_later(store_db):
    # No hub configured, nothing acknowledged: levels come from local movements and
    # every movement waits in the outbox, in order, for the sync worker.
    (a,) = _stocked(store_db, 1)
    before = levels(store_db, [a])[a]
    r = res.create(store_db, [(a, 1)], now=NOW)
    res.release(store_db, r["id"], staff_id=None, device="")
    pending = store_db.execute(
        """SELECT json_extract(payload, '$.kind'), json_extract(payload, '$.delta')
           FROM outbox WHERE type = 'stock.movement' AND acked_at IS NULL
             AND json_extract(payload, '$.sku') = ? ORDER BY rowid""",
        [a],
    ).fetchall()
    assert pending[-2:] == [("reserved", -1), ("released", 1)]
    assert levels(store_db, [a])[a] == before
