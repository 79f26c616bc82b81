"""Unit tests of the store's sync parts: outbox, feed apply, backoff, error classes."""

from __future__ import annotations

import json
import random
import threading
from datetime import timedelta

import pytest
import requests

from app.core import clock
from app.core import db as dbmod
from app.core.signing import verify_request
from app.store.domain import outbox
from app.store.domain.acks import ACK_HOOKS
from app.store.domain.stock import adjust, levels, self_store_id
from app.store.sync import backoff, feed, state
from app.store.sync.client import HubClient, HubError, is_retryable_status, parse_retry_after

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock


def _sku(db) -> tuple[str, int]:
    return db.execute(
        """SELECT l.sku, l.qty FROM stock_levels l JOIN stores s ON s.id = l.store_id
           WHERE s.is_self = 1 AND l.qty >= 5 LIMIT 1"""
    ).fetchone()


def _held(db, store_id: str, sku: str) -> tuple[int, int]:
    return db.execute(
        "SELECT qty, seq FROM stock_levels WHERE store_id = ? AND sku = ?", [store_id, sku]
    ).fetchone()


# --------------------------------------------------------------------------- outbox


def test_pending_is_oldest_first_and_excludes_acked_parked_and_leased(store_db):
    sku, _ = _sku(store_db)
    ids = [adjust(store_db, sku, -1)["id"] for _ in range(5)]
    assert [r["id"] for r in outbox.pending(store_db, 10)] == ids
    outbox.mark_acked(store_db, ids[0], None, hooks=ACK_HOOKS)
    outbox.park(store_db, ids[1], "unknown_sku", "no variant")
    leased = outbox.lease(store_db, 1, owner="other:1")
    assert [r["id"] for r in leased] == [ids[2]]
    assert [r["id"] for r in outbox.pending(store_db, 10)] == ids[3:]
    # A lease runs out: the row is sent again by whoever comes next.
    later = clock.utcnow() + timedelta(seconds=outbox.LEASE_SECONDS + 1)
    assert [r["id"] for r in outbox.pending(store_db, 10, later)] == ids[2:]
    assert leased[0]["payload"]["delta"] == -1


def test_two_leases_never_take_the_same_rows(store_db):
    sku, _ = _sku(store_db)
    for _ in range(6):
        adjust(store_db, sku, 1)
    a = {r["id"] for r in outbox.lease(store_db, 4, owner="a:1")}
    b = {r["id"] for r in outbox.lease(store_db, 4, owner="b:2")}
    assert len(a) == 4 and len(b) == 2 and not a & b


def test_release_dead_frees_a_killed_process_lease(store_db):
    sku, _ = _sku(store_db)
    adjust(store_db, sku, 1)
    import socket

    # PID 2**22+7 is above the default pid_max: certainly not running.
    outbox.lease(store_db, 10, owner=f"{socket.gethostname()}:{2**22 + 7}")
    outbox.lease(store_db, 10, owner=outbox.owner_id())  # nothing left to take
    assert outbox.pending(store_db) == []
    assert outbox.release_dead(store_db) == 1
    assert len(outbox.pending(store_db)) == 1


def test_ack_of_a_movement_takes_the_newer_hub_level_in_one_go(store_db):
    sku, qty = _sku(store_db)
    store = self_store_id(store_db)
    m = adjust(store_db, sku, -2)
    assert levels(store_db, [sku])[sku] == qty - 2
    assert outbox.mark_acked(
        store_db, m["id"], {"sku": sku, "qty": qty - 2, "seq": 50}, hooks=ACK_HOOKS
    )
    assert _held(store_db, store, sku) == (qty - 2, 50)
    # The level shown counts the movement once: it is in the hub level now.
    assert levels(store_db, [sku])[sku] == qty - 2
    assert store_db.execute(
        "SELECT acked_at IS NOT NULL FROM stock_movements WHERE id = ?", [m["id"]]
    ).fetchone() == (1,)
    assert outbox.stats(store_db)["depth"] == 0
    assert not outbox.mark_acked(store_db, m["id"], None, hooks=ACK_HOOKS)  # already acked: no-op


def test_ack_with_an_older_seq_keeps_the_newer_level(store_db):
    sku, qty = _sku(store_db)
    store = self_store_id(store_db)
    m = adjust(store_db, sku, -1)
    # The feed already brought a newer level (which includes the movement).
    feed.apply_page(
        store_db,
        {
            "changes": [
                {
                    "seq": 90,
                    "kind": "stock",
                    "key": f"{store}/{sku}",
                    "data": {"store_id": store, "sku": sku, "qty": qty + 4, "as_of": "x"},
                }
            ],
            "cursor": "90",
        },
        store,
    )
    outbox.mark_acked(store_db, m["id"], {"sku": sku, "qty": qty - 1, "seq": 40}, hooks=ACK_HOOKS)
    assert _held(store_db, store, sku) == (qty + 4, 90)
    assert levels(store_db, [sku])[sku] == qty + 4


def test_ack_bumps_the_stock_version(store_db):
    sku, _ = _sku(store_db)
    m = adjust(store_db, sku, 1)
    before = int(dbmod.get_meta(store_db, "stock_version"))
    outbox.mark_acked(store_db, m["id"], None, hooks=ACK_HOOKS)
    assert int(dbmod.get_meta(store_db, "stock_version")) > before


def test_park_and_stats(store_db):
    sku, _ = _sku(store_db)
    now = clock.utcnow()
    assert outbox.stats(store_db, now) == {
        "depth": 0,
        "oldest_created_at": None,
        "oldest_age_s": None,
        "parked": 0,
    }
    a = adjust(store_db, sku, 1)["id"]
    adjust(store_db, sku, 1)
    outbox.park(store_db, a, "unknown_sku", "no variant X")
    stats = outbox.stats(store_db, now + timedelta(seconds=30))
    assert stats["depth"] == 1 and stats["parked"] == 1
    assert 29 <= stats["oldest_age_s"] <= 31
    [p] = outbox.parked(store_db)
    assert (p["id"], p["parked_reason"], p["parked_message"]) == (a, "unknown_sku", "no variant X")


# ----------------------------------------------------------------------------- feed


def _product(pk: int, ref: str, name: str, category_id: int = 1) -> dict:
    return {
        "pk": pk,
        "ref": ref,
        "category_id": category_id,
        "brand": "Kiprun",
        "name_fr": name,
        "name_en": name,
        "description_fr": "",
        "description_en": "",
        "price_cents": 1999,
        "variants": [
            {
                "sku": f"{ref}-BLK-42",
                "ean": "3761234567897",
                "size": "42",
                "size_order": 5,
                "colour_code": "BLK",
                "colour_fr": "Noir",
                "colour_en": "Black",
                "colour_hex": "#000000",
                "price_cents": None,
            }
        ],
    }


def _page(changes: list[dict], cursor: str, more: bool = False) -> dict:
    return {"changes": changes, "cursor": cursor, "more": more, "remaining": 0}


def _empty_db(tmp_path):
    from app.store.migrations import migrate

    db = dbmod.connect(tmp_path / "kiosk.db")
    migrate(db)
    return db


def test_first_page_fills_an_empty_store_and_reapplying_is_harmless(tmp_path):
    from app.core.search import search_products

    db = _empty_db(tmp_path)
    page = _page(
        [
            {"seq": 1, "kind": "store", "key": "st-a", "data": {"id": "st-a", "name": "Lyon"}},
            {"seq": 2, "kind": "store", "key": "st-b", "data": {"id": "st-b", "name": "Paris"}},
            {
                "seq": 3,
                "kind": "category",
                "key": "running",
                "data": {
                    "id": 1,
                    "slug": "running",
                    "name_fr": "Course",
                    "name_en": "Running",
                    "position": 1,
                },
            },
            {"seq": 4, "kind": "product", "key": "M1", "data": _product(1, "M1", "Vélo rouge")},
            {
                "seq": 5,
                "kind": "stock",
                "key": "st-a/M1-BLK-42",
                "data": {"store_id": "st-a", "sku": "M1-BLK-42", "qty": 3, "as_of": "t"},
            },
            {"seq": 6, "kind": "loyalty_offer", "key": "p1", "data": {}},
        ],
        "6",
    )
    counts = feed.apply_page(db, page, "st-a")
    assert counts["applied"] == 5 and counts["skipped"] == {"loyalty_offer": 1}
    assert state.cursor(db) == "6"
    assert self_store_id(db) == "st-a"
    assert levels(db, ["M1-BLK-42"]) == {"M1-BLK-42": 3}
    assert search_products(db, "velo") == [1]
    snapshot = {t: list(db[t].rows) for t in ("stores", "categories", "products", "variants")}
    feed.apply_page(db, page, "st-a")  # a page seen twice after a crash
    assert {t: list(db[t].rows) for t in snapshot} == snapshot
    assert search_products(db, "velo") == [1]


def test_product_update_keeps_the_search_index_right(tmp_path):
    from app.core.search import search_products

    db = _empty_db(tmp_path)
    cat = {"id": 1, "slug": "c", "name_fr": "C", "name_en": "C", "position": 0}
    feed.apply_page(
        db,
        _page(
            [
                {"seq": 1, "kind": "category", "key": "c", "data": cat},
                {"seq": 2, "kind": "product", "key": "M1", "data": _product(1, "M1", "Tente")},
            ],
            "2",
        ),
        None,
    )
    feed.apply_page(
        db,
        _page(
            [{"seq": 3, "kind": "product", "key": "M1", "data": _product(1, "M1", "Gourde")}], "3"
        ),
        None,
    )
    assert search_products(db, "gourde") == [1]
    assert search_products(db, "tente") == []


def test_older_stock_level_is_ignored(store_db):
    sku, qty = _sku(store_db)
    store = self_store_id(store_db)

    def stock(seq: int, q: int) -> dict:
        data = {"store_id": store, "sku": sku, "qty": q, "as_of": "2026-11-22T14:02:00Z"}
        return {"seq": seq, "kind": "stock", "key": f"{store}/{sku}", "data": data}

    feed.apply_page(store_db, _page([stock(10, 7)], "10"), store)
    counts = feed.apply_page(store_db, _page([stock(8, 99)], "11"), store)
    assert counts["stale"] == 1
    assert _held(store_db, store, sku) == (7, 10)
    # In one page the later change wins too.
    feed.apply_page(store_db, _page([stock(12, 5), stock(13, 6)], "13"), store)
    assert _held(store_db, store, sku) == (6, 13)


def test_a_change_that_cannot_be_applied_does_not_block_the_page(tmp_path):
    db = _empty_db(tmp_path)
    cat = {"id": 1, "slug": "c", "name_fr": "C", "name_en": "C", "position": 0}
    bad = {"seq": 3, "kind": "product", "key": "M2", "data": {"pk": 2}}  # fields missing
    counts = feed.apply_page(
        db,
        _page(
            [
                {"seq": 1, "kind": "category", "key": "c", "data": cat},
                {"seq": 2, "kind": "product", "key": "M1", "data": _product(1, "M1", "Tente")},
                bad,
            ],
            "3",
        ),
        None,
    )
    assert counts["failed"] == 1 and counts["applied"] == 2
    assert state.cursor(db) == "3"


def test_product_before_its_category_gets_a_stand_in(tmp_path):
    db = _empty_db(tmp_path)
    feed.apply_page(
        db,
        _page([{"seq": 1, "kind": "product", "key": "M1", "data": _product(1, "M1", "T", 7)}], "1"),
        None,
    )
    cat = {"id": 7, "slug": "tentes", "name_fr": "Tentes", "name_en": "Tents", "position": 3}
    feed.apply_page(
        db, _page([{"seq": 2, "kind": "category", "key": "tentes", "data": cat}], "2"), None
    )
    assert db.execute("SELECT slug, name_fr FROM categories").fetchall() == [("tentes", "Tentes")]


def test_cursor_is_saved_with_the_page_or_not_at_all(store_db, monkeypatch):
    before = state.cursor(store_db)

    def boom(*a, **k):
        raise RuntimeError("power cut")

    monkeypatch.setattr(feed, "_apply_stock", boom)
    monkeypatch.setitem(feed.APPLIERS, "stock", boom)
    page = _page(
        [
            {"seq": 5, "kind": "store", "key": "st-x", "data": {"id": "st-x", "name": "X"}},
            {
                "seq": 6,
                "kind": "stock",
                "key": "st-x/a",
                "data": {"store_id": "st-x", "sku": "a", "qty": 1},
            },
        ],
        "6",
    )
    with pytest.raises(RuntimeError):
        feed.apply_page(store_db, page, None)
    assert state.cursor(store_db) == before
    assert store_db.execute("SELECT count(*) FROM stores WHERE id = 'st-x'").fetchone() == (0,)


# -------------------------------------------------------------------------- backoff


def test_full_jitter_bounds_and_cap():
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(60, 2**attempt)
        samples = [backoff.delay(attempt, rng=rng) for _ in range(300)]
        assert all(0 <= s <= ceiling for s in samples)
        # Full jitter spreads over the whole range, not just near the ceiling.
        assert min(samples) < ceiling * 0.1 and max(samples) > ceiling * 0.9
    assert backoff.ceiling(1000) == 60


def test_retry_after_is_honoured_and_permanent_errors_wait_the_cap():
    assert backoff.delay(0, retry_after=7) == 7
    assert backoff.delay(9, retry_after=0) == 0
    assert backoff.delay(0, retry_after=10**9) == backoff.MAX_RETRY_AFTER_S
    assert backoff.delay(0, retryable=False) == 60


def test_parse_retry_after():
    assert parse_retry_after("12") == 12
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert 0 <= parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") < 1  # in the past: now


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (None, True),
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (413, False),
        (422, False),
    ],
)
def test_which_failures_are_retried(status, retryable):
    assert is_retryable_status(status) is retryable
    assert HubError("x", status=status).retryable is retryable


# ------------------------------------------------------------------------ hub client


class _Recorder(requests.adapters.BaseAdapter):
    """A transport that records requests and answers with a canned response."""

    def __init__(self, status: int, body: object, headers: dict | None = None) -> None:
        super().__init__()
        self.status, self.body, self.headers = status, body, headers or {}
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.sent.append(request)
        resp = requests.Response()
        resp.status_code = self.status
        resp._content = json.dumps(self.body).encode() if self.body is not None else b"<html>"
        resp.headers.update(self.headers)
        resp.request = request
        resp.url = request.url
        return resp

    def close(self):
        pass


def _client(adapter) -> HubClient:
    session = requests.Session()
    session.mount("http://", adapter)
    return HubClient("http://hub.test/", "st-a", "ab" * 32, session=session)


def test_requests_are_signed_over_the_path_and_query_as_sent():
    adapter = _Recorder(200, {"changes": [], "cursor": "0", "more": False})
    _client(adapter).get_changes("42", wait=25, limit=10)
    req = adapter.sent[0]
    assert req.path_url == "/api/v1/changes?since=42&wait=25&limit=10"
    store, _, _ = verify_request(
        req.headers, "GET", req.path_url, b"", lambda s: "ab" * 32 if s == "st-a" else None
    )
    assert store == "st-a"
    adapter = _Recorder(200, {"results": []})
    _client(adapter).post_transactions([{"id": "x"}])
    req = adapter.sent[0]
    verify_request(req.headers, "POST", "/api/v1/transactions", req.body, lambda s: "ab" * 32)


@pytest.mark.parametrize(
    ("status", "body", "headers", "retryable", "retry_after"),
    [
        (503, {"error": "busy"}, {"Retry-After": "9"}, True, 9),
        (429, {"error": "slow_down"}, {"Retry-After": "3"}, True, 3),
        (500, None, {}, True, None),
        (401, {"error": "bad_signature"}, {}, False, None),
        (200, None, {}, True, None),  # an answer cut short: what the hub did is unknown
    ],
)
def test_error_answers_become_typed_errors(status, body, headers, retryable, retry_after):
    with pytest.raises(HubError) as info:
        _client(_Recorder(status, body, headers)).post_transactions([])
    assert info.value.retryable is retryable
    assert info.value.retry_after == retry_after


def test_unreachable_hub_is_a_retryable_error():
    client = HubClient("http://127.0.0.1:9", "st-a", "ab" * 32, connect_timeout=1)
    with pytest.raises(HubError) as info:
        client.get_changes("0")
    assert info.value.retryable and info.value.status is None


# ------------------------------------------------------------------------ sync state


def test_online_needs_a_recent_success(store_db):
    now = clock.utcnow()
    assert not state.is_online(store_db, now)
    state.record_success(store_db, "pull", now)
    assert state.is_online(store_db, now)
    assert not state.is_online(store_db, now + timedelta(seconds=91))
    state.record_failure(store_db, "cannot reach the hub", "push", now)
    assert not state.is_online(store_db, now)
    # The pull side working again does not hide the push side's error.
    state.record_success(store_db, "pull", now)
    assert state.snapshot(store_db, hub_configured=True, now=now)["last_error"]
    state.record_success(store_db, "push", now)
    snap = state.snapshot(store_db, hub_configured=True, now=now)
    assert snap["online"] and snap["last_error"] is None


def test_retry_request_is_taken_once(store_db):
    assert not state.take_retry_request(store_db)
    state.request_retry(store_db)
    assert state.take_retry_request(store_db)
    assert not state.take_retry_request(store_db)


def test_feed_level_naming_a_movement_acknowledges_it(tmp_path):
    """The feed may bring the hub's level (which includes a movement) before the POST
    answer: the movement must not be counted twice meanwhile."""
    from app.core import db as dbmod
    from app.demo import seed as seedmod
    from app.store.domain import stock
    from app.store.migrations import migrate
    from app.store.sync import feed

    db = dbmod.connect(tmp_path / "kiosk.db")
    migrate(db)
    own = seedmod.DEMO_STORES[0]["id"]
    seedmod.seed_store(db, own, products=20)
    sku, qty = db.execute(
        "SELECT sku, qty FROM stock_levels WHERE store_id = ? AND qty > 3 LIMIT 1", [own]
    ).fetchone()
    moved = stock.adjust(db, sku, -2)
    assert stock.levels(db, [sku])[sku] == qty - 2
    page = {
        "changes": [
            {
                "seq": 10**9,
                "kind": "stock",
                "key": f"{own}/{sku}",
                "data": {
                    "store_id": own,
                    "sku": sku,
                    "qty": qty - 2,
                    "as_of": "2026-11-22T14:02:00Z",
                    "tx": moved["id"],
                },
            }
        ],
        "cursor": str(10**9),
        "more": False,
        "remaining": 0,
    }
    feed.apply_page(db, page, own)
    assert stock.levels(db, [sku])[sku] == qty - 2  # not qty - 4


def test_the_secret_key_is_made_once_when_many_start_at_the_same_time(tmp_path):
    from app.core.secrets import secret_key

    keys, errors = [], []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        try:
            keys.append(secret_key(tmp_path))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [] and len(keys) == 8 and len(set(keys)) == 1 and len(keys[0]) == 64
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary left
