"""The feed served from memory (app/hub/recent_changes.py) answers exactly what the table
does (app/hub/domain/changes.py), on both backends, whatever the cursor, store and limit."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest

from app.hub.domain import changes
from app.hub.recent_changes import RecentChanges, item_json
from app.hub.storage import open_database

from .pg import *  # noqa: F403

STORES = ["st-a", "st-b", "st-c"]


@pytest.fixture(params=["sqlite", "postgresql"])
def hub(request, tmp_path: Path):
    """A migrated hub database with a feed of 300 changes: global ones and changes for
    one store, mixed, including non-ASCII and quotes in keys and data."""
    target = (
        str(tmp_path / "hub.db")
        if request.param == "sqlite"
        else request.getfixturevalue("pg_database")
    )
    db = open_database(target)
    rng = random.Random(7)
    _append(db, rng, 300)
    yield db
    db.close()


def _append(db, rng: random.Random, n: int) -> None:
    from app.hub import database as hdb

    with hdb.write(db):
        for i in range(n):
            store = rng.choice([None, None, *STORES])
            data = {"n": i, "name": f'Crème "brûlée" {i}', "nested": {"x": [1, 2.5, None]}}
            changes.append_change(db, "stock", f"sku-{i}-é", data, store_id=store)


def _table_page(db, store: str, since: int, limit: int) -> dict:
    page = changes.changes_since(db, store, since, limit)
    return {
        "changes": page["changes"],
        "cursor": page["cursor"],
        "more": page["more"],
        "remaining": page["remaining"],
    }


def _memory_page(recent: RecentChanges, db, store: str, since: int, limit: int) -> dict:
    page = recent.page(db, store, since, limit)
    return {
        "changes": [json.loads(item) for item in page["items"]],
        "cursor": page["cursor"],
        "more": page["more"],
        "remaining": page["remaining"],
    }


def test_memory_pages_equal_table_pages(hub):
    newest = changes.last_seq(hub)
    rng = random.Random(11)
    # Hold only the last 120 changes: older cursors are answered from the table.
    recent = RecentChanges(keep=120)
    for _ in range(400):
        store = rng.choice(STORES)
        since = rng.randint(0, newest + 2)
        limit = rng.choice([1, 2, 5, 50, 1000])
        assert _memory_page(recent, hub, store, since, limit) == _table_page(
            hub, store, since, limit
        ), (store, since, limit)


def test_new_changes_are_seen_on_the_next_page_and_old_ones_are_forgotten(hub):
    recent = RecentChanges(keep=50)
    newest = changes.last_seq(hub)
    assert recent.page(hub, "st-a", newest, 10)["items"] == []
    _append(hub, random.Random(3), 200)  # more than kept: the oldest held are dropped
    store, since = "st-b", newest
    while True:  # page through as a store does: every change once, in order
        got, want = (
            _memory_page(recent, hub, store, since, 7),
            _table_page(hub, store, since, 7),
        )
        assert got == want
        if not got["changes"]:
            break
        since = int(got["cursor"])
    assert int(got["cursor"]) == changes.last_seq(hub)


def test_item_json_is_the_feeds_json():
    item = item_json(5, "stock", 'k"é', '{"a":1}')
    assert json.loads(item) == {"seq": 5, "kind": "stock", "key": 'k"é', "data": {"a": 1}}
    assert list(json.loads(item)) == ["data", "key", "kind", "seq"]


def test_a_feed_waiter_nobody_uses_stops_and_starts_again(tmp_path, monkeypatch):
    from app.hub import feed_wait

    monkeypatch.setattr(feed_wait, "IDLE_STOP_S", 0.3)
    db = open_database(tmp_path / "hub.db")
    waiter = feed_wait.FeedWaiter(tmp_path / "hub.db", 0.05, None)
    assert waiter.wait_past(0, 0.2) is False  # nothing in the feed: times out
    threads = [t for t in threading.enumerate() if t.name == "feed-waiter"]
    assert threads
    for t in threads:
        t.join(timeout=5)  # idle for 0.3 s: it stops by itself
    assert not any(t.is_alive() for t in threads)
    _append(db, random.Random(1), 1)
    assert waiter.wait_past(0, 5) is True  # started again, sees the change
    db.close()
