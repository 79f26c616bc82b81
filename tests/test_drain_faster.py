"""Issue 15, "drain faster": queuing stays linear, acknowledgements are set-based, and
the running figure of unacknowledged stock always equals the sum it replaces."""

from __future__ import annotations

import json
import random
import shutil
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import db as dbmod
from app.core import jsonsafe
from app.core.text import clean_text
from app.hub import database as hdb
from app.hub.protocol import stock as hub_stock
from app.hub.protocol import transactions
from app.hub.protocol.common import Rejected, canonical_json, parse_id
from app.store.domain import acks, outbox
from app.store.domain.acks import ACK_BATCH_HOOKS, ACK_HOOKS
from app.store.domain.stock import adjust, levels, self_store_id

from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import BORDEAUX, LYON, PARIS, hub_db, movement

pytestmark = pytest.mark.clock

# The sum the running figure replaces: unacknowledged, unparked movements per SKU.
_RECOMPUTED = """SELECT m.sku, SUM(m.delta) FROM stock_movements m
    WHERE m.acked_at IS NULL AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = m.id
                                             AND o.parked_reason IS NOT NULL)
    GROUP BY m.sku"""


def _skus(db, n: int) -> list[str]:
    return [r[0] for r in db.execute("SELECT sku FROM variants ORDER BY sku LIMIT ?", [n])]


def _running(db) -> dict[str, int]:
    return {sku: d for sku, d in db.execute("SELECT sku, delta FROM stock_pending") if d}


def _recomputed(db) -> dict[str, int]:
    return {sku: d for sku, d in db.execute(_RECOMPUTED) if d}


class _VmSteps:
    """SQLite virtual-machine instructions run (rows read, index steps...), counted
    with a progress handler called on every instruction: work, not time."""

    def __init__(self, db) -> None:
        self.db, self.steps = db, 0

    def _tick(self) -> int:
        self.steps += 1
        return 0

    def __enter__(self) -> _VmSteps:
        self.db.conn.set_progress_handler(self._tick, 1)
        return self

    def __exit__(self, *exc) -> None:
        self.db.conn.set_progress_handler(None, 0)


def _adjust_cost(db, sku: str) -> tuple[int, int]:
    """(SQL statements, VM instructions) of one adjustment of ``sku``."""
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        with _VmSteps(db) as vm:
            adjust(db, sku, 1, reason="test")
    finally:
        db.conn.set_trace_callback(None)
    return len(statements), vm.steps


def test_an_adjustment_costs_the_same_however_long_the_backlog(store_db):
    sku = _skus(store_db, 1)[0]
    adjust(store_db, sku, 1)
    statements_small, steps_small = _adjust_cost(store_db, sku)
    with dbmod.write(store_db):
        for i in range(2000):
            adjust(store_db, sku, (-1) ** i)
    assert (
        store_db.execute(
            "SELECT count(*) FROM stock_movements WHERE sku = ? AND acked_at IS NULL", [sku]
        ).fetchone()[0]
        == 2002
    )
    statements_big, steps_big = _adjust_cost(store_db, sku)
    assert statements_big == statements_small
    # Summing the SKU's 2,000 unacknowledged movements (twice, as before) costs tens
    # of thousands of instructions more; the running figure costs the same.
    assert steps_big <= steps_small * 1.2 + 50, (steps_small, steps_big)


def test_adjust_reports_before_and_after_from_the_running_figure(store_db):
    sku = _skus(store_db, 1)[0]
    start = levels(store_db, [sku], clamp=False)[sku]
    result = adjust(store_db, sku, -(start + 3))
    assert result["before"] == start
    assert result["after"] == 0  # a shopper never sees a negative level
    assert levels(store_db, [sku], clamp=False)[sku] == -3
    result = adjust(store_db, sku, 5, counted=True)
    assert (result["before"], result["after"], result["delta"]) == (-3, 5, 8)


def test_running_figure_equals_the_recomputed_sum_through_every_path(store_db):
    """Movements written, parked, unparked, acknowledged one by one and in batches,
    acknowledged through the feed, discarded: the running figure is the sum."""
    rng = random.Random(15)
    skus = _skus(store_db, 4)
    ids: list[str] = []
    for step in range(400):
        action = rng.random()
        live = [
            r[0]
            for r in store_db.execute(
                "SELECT id FROM outbox WHERE type = 'stock.movement' AND acked_at IS NULL"
            )
        ]
        parked_ids = [r["id"] for r in outbox.parked(store_db, 1000)]
        if action < 0.45 or not live:
            ids.append(adjust(store_db, rng.choice(skus), rng.randint(-5, 5) or 1)["id"])
        elif action < 0.55:
            outbox.park(store_db, rng.choice(live), "rejected", "test")
        elif action < 0.62 and parked_ids:
            acks.apply_command(store_db, rng.choice(parked_ids), "retry")
        elif action < 0.67 and parked_ids:
            acks.apply_command(store_db, rng.choice(parked_ids), "discard", reason="test")
        elif action < 0.75:
            outbox.mark_acked(store_db, rng.choice(live), None, hooks=ACK_HOOKS)
        elif action < 0.9:
            chosen = rng.sample(live, min(len(live), rng.randint(1, 8)))
            outbox.mark_acked_many(
                store_db,
                [(i, None) for i in chosen],
                hooks=ACK_HOOKS,
                batch_hooks=ACK_BATCH_HOOKS,
            )
        else:
            # The feed's level naming the transaction it includes acknowledges it.
            with dbmod.write(store_db):
                store_db.execute(
                    "UPDATE stock_movements SET acked_at = 'x' WHERE id = ? AND acked_at IS NULL",
                    [rng.choice(live)],
                )
        assert _running(store_db) == _recomputed(store_db), f"step {step}"
    assert len(ids) > 100


def test_batch_acknowledgement_is_the_same_as_one_by_one(store_db, store_data, tmp_path):
    """Set-based acks leave the same outbox, movements and levels as mark_acked per row,
    rows of one SKU and an out-of-order older level included."""
    skus = _skus(store_db, 3)
    own = self_store_id(store_db)
    moved = [adjust(store_db, skus[i % 3], i + 1)["id"] for i in range(9)]
    store_db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    twin_path = tmp_path / "twin.db"
    shutil.copy(dbmod.db_path(store_data), twin_path)
    twin = dbmod.connect(twin_path)
    results = [
        (tx, {"sku": skus[i % 3], "qty": 100 + i, "seq": 10_000 + (i if i != 7 else -5)})
        for i, tx in enumerate(moved)
    ]
    results.append((moved[0], {"sku": skus[0], "qty": 1, "seq": 1}))  # already acked
    for tx, res in results:
        outbox.mark_acked(twin, tx, res, now=None, hooks=ACK_HOOKS)
    done = outbox.mark_acked_many(store_db, results, hooks=ACK_HOOKS, batch_hooks=ACK_BATCH_HOOKS)
    assert done == set(moved)

    def state(db):
        return (
            db.execute(
                "SELECT id, acked_at IS NOT NULL, result FROM outbox ORDER BY id"
            ).fetchall(),
            db.execute(
                "SELECT id, acked_at IS NOT NULL FROM stock_movements ORDER BY id"
            ).fetchall(),
            db.execute(
                "SELECT sku, qty, seq FROM stock_levels WHERE store_id = ? ORDER BY sku", [own]
            ).fetchall(),
            levels(db, skus),
        )

    assert state(store_db) == state(twin)
    twin.close()


def test_a_batch_of_acknowledgements_is_a_few_statements_not_a_few_per_row(store_db):
    skus = _skus(store_db, 5)
    moved = [adjust(store_db, skus[i % 5], 1)["id"] for i in range(200)]
    statements: list[str] = []
    store_db.conn.set_trace_callback(statements.append)
    try:
        outbox.mark_acked_many(
            store_db,
            [(tx, {"sku": skus[i % 5], "qty": i, "seq": 10**9 + i}) for i, tx in enumerate(moved)],
            hooks=ACK_HOOKS,
            batch_hooks=ACK_BATCH_HOOKS,
        )
    finally:
        store_db.conn.set_trace_callback(None)
    # BEGIN, the outbox, the movements, the levels, COMMIT. (The trace repeats a
    # statement, its values written in, each time one of its triggers runs: counted once.
    # Statements per row would differ by their values.)
    top = [s for k, s in enumerate(statements) if k == 0 or s != statements[k - 1]]
    assert len(top) <= 6, sorted({s[:70] for s in top})
    own = self_store_id(store_db)
    held = dict(
        store_db.execute(
            "SELECT sku, seq FROM stock_levels WHERE store_id = ? AND sku IN (?, ?, ?, ?, ?)",
            [own, *skus],
        ).fetchall()
    )
    assert held == {s: 10**9 + 195 + i for i, s in enumerate(skus)}  # the newest seq of each SKU
    assert not store_db.execute(
        "SELECT count(*) FROM stock_movements WHERE acked_at IS NULL"
    ).fetchone()[0]


# --------------------------------------------------------------------------- the hub


class _Undo(Exception):
    pass


def _hub_sku(db, store_id: str, offset: int = 0) -> str:
    return db.execute(
        "SELECT sku FROM stock_levels WHERE store_id = ? ORDER BY sku LIMIT 1 OFFSET ?",
        [store_id, offset],
    ).fetchone()[0]


def _hub_state(db, answers: list[dict], seq_floor: int) -> tuple:
    """What a batch did, with seqs counted from the batch's first (PostgreSQL does not
    give back seqs drawn in a rolled-back transaction) and times left out."""

    def seq_of(res: dict) -> dict:
        res = dict(res)
        if res["status"] == "accepted":  # a duplicate's seq is the first time's, as is
            res["result"] = {**res["result"], "seq": res["result"]["seq"] - seq_floor}
        return res

    changes = [
        (key, {k: v for k, v in json.loads(data).items() if k != "as_of"})
        for key, data in db.execute(
            "SELECT key, data FROM changes WHERE seq > ? ORDER BY seq", [seq_floor]
        ).fetchall()
    ]
    records = db.execute(
        "SELECT id, store_id, type, body_hash, status, reason FROM transactions ORDER BY id"
    ).fetchall()
    levels_now = db.execute(
        "SELECT store_id, sku, qty FROM stock_levels ORDER BY store_id, sku"
    ).fetchall()
    return (
        [seq_of(a) for a in answers],
        changes,
        [tuple(r) for r in records],
        [tuple(r) for r in levels_now],
    )


def test_the_set_based_batch_answers_and_writes_as_item_by_item(hub_data):
    """Accepted (one SKU several times, a level missing at the hub), duplicate,
    conflict, another store's payload, an unknown SKU, a bad delta: the set-based path
    and the item-by-item path give the same answers, levels, changes and records."""
    db = hub_db(hub_data)
    a, b = _hub_sku(db, LYON, 0), _hub_sku(db, LYON, 1)
    missing = db.execute(
        "SELECT sku FROM variants WHERE sku NOT IN "
        "(SELECT sku FROM stock_levels WHERE store_id = ?) LIMIT 1",
        [LYON],
    ).fetchone()
    seen, other = movement(a, -1), movement(b, 2)
    transactions.apply_batch(db, LYON, [seen], data_dir=hub_data)
    transactions.apply_batch(db, LYON, [other], data_dir=hub_data)
    conflicting = {**other, "payload": {**other["payload"], "delta": 9}}
    items = [
        movement(a, -2),
        seen,
        movement(b, 3),
        movement(a, 5),
        conflicting,
        movement(a, 1, store_id=PARIS),
        movement("NO-SUCH-SKU", 1),
        {**movement(b, 1), "payload": {"sku": b, "delta": True, "kind": "adjusted"}},
        movement(a, -1),
    ]
    if missing:
        items.append(movement(missing[0], 4))
    floor = db.execute("SELECT max(seq) FROM changes").fetchone()[0]
    outcomes = {}
    for name, run in (
        ("set-based", lambda: transactions._apply_movements(db, LYON, items)),
        ("one by one", lambda: [transactions.apply_one(db, LYON, i) for i in items]),
    ):
        try:
            with hdb.write(db):
                answers = run()
                assert answers is not None
                first = min(
                    (r["result"]["seq"] for r in answers if r["status"] == "accepted"),
                    default=floor,
                )
                outcomes[name] = _hub_state(db, answers, first - 1)
                raise _Undo
        except _Undo:
            pass
    assert outcomes["set-based"] == outcomes["one by one"]
    statuses = [a["status"] for a in outcomes["set-based"][0]]
    assert statuses == ["accepted", "duplicate", "accepted", "accepted", "rejected"] + [
        "rejected"
    ] * 3 + ["accepted"] + (["accepted"] if missing else [])
    db.close()


def test_a_batch_of_movements_is_a_few_statements_and_applied_once(hub_data, monkeypatch):
    db = hub_db(hub_data)
    skus = [_hub_sku(db, BORDEAUX, i) for i in range(5)]
    before = dict(
        db.execute("SELECT sku, qty FROM stock_levels WHERE store_id = ?", [BORDEAUX]).fetchall()
    )
    items = [movement(skus[i % 5], -1) for i in range(200)]
    calls = []
    real = hdb.execute
    monkeypatch.setattr(hdb, "execute", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    results = transactions.apply_batch(db, BORDEAUX, items, data_dir=hub_data)
    monkeypatch.setattr(hdb, "execute", real)
    assert [r["status"] for r in results] == ["accepted"] * 200
    # ids seen, variants, levels, changes, records (NOTIFY on PostgreSQL): not 7 per item.
    assert len(calls) <= 8, calls
    after = dict(
        db.execute("SELECT sku, qty FROM stock_levels WHERE store_id = ?", [BORDEAUX]).fetchall()
    )
    assert {s: before[s] - after[s] for s in skus} == dict.fromkeys(skus, 40)
    # Each answer is the level just after that movement, seqs rising in batch order.
    last = {s: before[s] for s in skus}
    seqs = []
    for item, res in zip(items, results, strict=True):
        sku = item["payload"]["sku"]
        last[sku] -= 1
        assert res["result"] == {"sku": sku, "qty": last[sku], "seq": res["result"]["seq"]}
        seqs.append(res["result"]["seq"])
    assert seqs == sorted(seqs) and len(set(seqs)) == 200
    # Sent again: every one a duplicate with the same result, nothing moves.
    again = transactions.apply_batch(db, BORDEAUX, items, data_dir=hub_data)
    assert [r["status"] for r in again] == ["duplicate"] * 200
    assert [r["result"] for r in again] == [r["result"] for r in results]
    assert (
        dict(
            db.execute(
                "SELECT sku, qty FROM stock_levels WHERE store_id = ?", [BORDEAUX]
            ).fetchall()
        )
        == after
    )
    db.close()


def _full_check(item, store_id):
    """The batch path's checks without the shortcut: the payload, or None if refused."""
    try:
        _, payload = transactions._check(item, store_id)
        hub_stock.check(payload)
    except Rejected:
        return None
    return payload


_TEXT = st.one_of(
    st.sampled_from(
        ["", " ", "SKU-1", "adjusted", "sold", LYON, PARIS, "x" * 101, "r" * 501, "é\n"]
    ),
    st.text(max_size=6),
    st.text(alphabet=st.characters(max_codepoint=0xA0), max_size=4),
)
_VALUE = st.one_of(
    _TEXT,
    st.integers(min_value=-(2**65), max_value=2**65),
    st.sampled_from([None, True, False, 1.5, [], {}, ["a"], 1_000_000, -1_000_001, 2**64]),
    st.sampled_from(["\x0b", "\ud800", "a\x85", "\t"]),
)


@settings(max_examples=600, deadline=None)
@given(
    envelope=st.dictionaries(
        st.sampled_from(["type", "occurred_at", "payload", "extra"]), _VALUE, max_size=1
    ),
    fields=st.dictionaries(
        st.sampled_from(["sku", "delta", "kind", "reason", "store_id", "other"]),
        _VALUE,
        max_size=2,  # one or two fields off a valid movement: the shortcut's edges
    ),
    occurred=st.sampled_from(
        ["2026-11-22T14:02:00Z", "2026-11-22T14:02:00.123456+02:00", "1969-12-31T23:59:59Z"]
        + ["2026-02-30T00:00:00Z", "2026-11-22T14:02:00Z\x0b", "", "9999-01-01T00:00:00Z"]
    ),
    tx_id=st.sampled_from(
        ["0b0e7ac6-6a47-4e4a-9b8e-2f61a3b2c9d1", "{0b0e7ac6-6a47-4e4a-9b8e-2f61a3b2c9d1}"]
        + ["\x0b0b0e7ac66a474e4a9b8e2f61a3b2c9d1", "0B0E7AC6-6A47-4E4A-9B8E-2F61A3B2C9D1"]
    ),
)
def test_the_shortcut_for_a_plain_movement_only_ever_says_what_the_full_checks_say(
    envelope, fields, occurred, tx_id
):
    """hub stock.plain (the batch's one-pass check) lets through only what the full
    checks (envelope, clean JSON, schema, stock.check) let through, with the same
    payload; whatever it leaves, the full checks judge (and word the refusal)."""
    valid = {"sku": "SKU-1", "delta": -1, "kind": "adjusted", "reason": "r", "store_id": LYON}
    item = {
        "id": tx_id,
        "type": "stock.movement",
        "occurred_at": occurred,
        "payload": {**valid, **fields},
        **envelope,
    }
    short = hub_stock.plain(item, LYON)
    if short is not None:
        assert _full_check(item, LYON) is short


_BREAKS = [
    ("payload", "sku", "x" * 101),
    ("payload", "sku", "  "),
    ("payload", "sku", "SKU\x0b"),
    ("payload", "delta", True),
    ("payload", "delta", 1_000_001),
    ("payload", "delta", 2.0),
    ("payload", "kind", "stolen"),
    ("payload", "reason", "r" * 501),
    ("payload", "reason", None),
    ("payload", "reason", "a\x85b"),
    ("payload", "store_id", PARIS),
    ("payload", "store_id", None),
    ("payload", "other", 2**64),
    ("payload", "other", "\ud800"),
    ("item", "occurred_at", "2026-02-30T00:00:00Z"),
    ("item", "occurred_at", "2026-11-22T14:02:00Z\x0b"),
    ("item", "id", "\x0b0b0e7ac66a474e4a9b8e2f61a3b2c9d1"),
    ("item", "extra", "\x00"),
    ("item", "type", "order.ready"),
]


@pytest.mark.parametrize(("where", "field", "value"), _BREAKS)
def test_the_shortcut_leaves_each_broken_field_to_the_full_checks(where, field, value):
    item = movement("SKU-1", -1)
    if where == "payload":
        item["payload"][field] = value
    else:
        item[field] = value
    assert _full_check(item, LYON) is None  # each of these is refused
    assert hub_stock.plain(item, LYON) is None


def test_the_shortcut_takes_the_everyday_movement():
    """Not a shortcut that never fires: what a store sends every day goes through it."""
    item = movement("SKU-1", -3)
    assert hub_stock.plain(item, LYON) is item["payload"]
    assert hub_stock.plain({**item, "payload": {**item["payload"], "store_id": LYON}}, LYON)
    assert (
        hub_stock.plain({**item, "payload": {**item["payload"], "store_id": PARIS}}, LYON) is None
    )


def test_an_id_parses_to_the_same_canonical_form_with_or_without_the_shortcut():
    """parse_id skips building a UUID for an id already in canonical form: every form a
    store may send still reads as uuid.UUID reads it (or is refused as there)."""
    for _ in range(200):
        u = str(uuid.uuid4())
        for v in (u, u.upper(), "{" + u + "}", u.replace("-", ""), f"urn:uuid:{u}", u + "\n"):
            try:
                expected = str(uuid.UUID(v))
            except ValueError:
                expected = None
            assert parse_id(v) == expected, v
    assert parse_id(u[:-1] + "g") is None and parse_id(" " + u) is None


def test_depth_counts_nesting_level_by_level_as_before():
    deep: list = []
    for _ in range(40):
        deep = [deep]
    cases = [(4, 0), ([], 1), ({"a": [{"b": 1}]}, 3), ([1, [2, [3]], {"x": {}}], 3), (deep, 41)]
    assert [jsonsafe.depth(v) for v, _ in cases] == [d for _, d in cases]
    with pytest.raises(ValueError, match="deeper than 32"):
        jsonsafe.loads(json.dumps(deep))


@settings(max_examples=400, deadline=None)
@given(
    sku=st.text(min_size=1, max_size=12),
    reason=st.one_of(st.none(), st.text(max_size=12)),
    kind=st.sampled_from(["adjusted", "sold"]),
    delta=st.integers(min_value=-1_000_000, max_value=1_000_000),
    with_store=st.booleans(),
    occurred=st.sampled_from(["2026-11-22T14:02:00Z", "2026-11-22T14:02:00.5+01:00"]),
    qty=st.integers(min_value=-(2**40), max_value=2**40),
)
def test_a_plain_movement_hashes_and_records_its_result_as_canonical_json_does(
    sku, reason, kind, delta, with_store, occurred, qty
):
    """stock.plain_digest and stock.result_text write the canonical JSON directly:
    the same text as canonical_json (quotes, backslashes, accents, line breaks...)."""
    payload = {"sku": sku, "delta": delta, "kind": kind}
    if reason is not None:
        payload["reason"] = reason
    if with_store:
        payload["store_id"] = LYON
    item = {"id": str(uuid.uuid4()), "type": "stock.movement", "occurred_at": occurred}
    item["payload"] = dict(reversed(payload.items()))  # key order as sent does not matter
    if hub_stock.plain(item, LYON) is None:
        return  # not a plain movement: the full path hashes it
    assert hub_stock.plain_digest(item) == transactions.body_hash(item)
    result = {"sku": sku, "qty": qty, "seq": abs(qty)}
    assert hub_stock.result_text(result) == clean_text(canonical_json(result), 100_000)
