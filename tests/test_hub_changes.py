"""GET /api/v1/changes against a real hub: paging, targeting, long-polling."""

from __future__ import annotations

import threading
import time

import pytest

from app.hub import database as hdb
from app.hub.domain.changes import append_change

from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import LYON, PARIS, HubClient, hub_db, movement, run_hub, store_secrets, validate
from .sync_fixtures import wait_for

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock


def _nonces(hub_server, store_id: str) -> set[str]:
    """The nonces the hub accepted from ``store_id``: one more once a signed request of
    it has reached the hub (checked before any handler runs, so before a long poll)."""
    db = hub_db(hub_server.data)
    try:
        rows = db.execute("SELECT nonce FROM nonces WHERE store_id = ?", [store_id]).fetchall()
    finally:
        db.close()
    return {row[0] for row in rows}


def _page(client, since, **kw):
    resp = client.changes(since=since, **kw)
    assert resp.status_code == 200, resp.text
    page = resp.json()
    validate(page, "ChangesPage")
    return page


def test_full_sync_in_pages_with_cursor_and_remaining(hub_client, hub_server):
    db = hub_db(hub_server.data)
    total = db.execute("SELECT count(*) FROM changes").fetchone()[0]
    db.close()
    seen: list[int] = []
    cursor = "0"
    remainings = []
    while True:
        page = _page(hub_client, cursor, limit=700)
        seen += [c["seq"] for c in page["changes"]]
        remainings.append(page["remaining"])
        assert page["remaining"] == total - len(seen)
        assert page["more"] == (page["remaining"] > 0)
        cursor = page["cursor"]
        if not page["more"]:
            break
    assert seen == sorted(seen) and len(seen) == total == len(set(seen))
    assert remainings == sorted(remainings, reverse=True)
    kinds = {c["kind"] for c in _page(hub_client, 0, limit=2000)["changes"]}
    assert kinds == {"store", "category", "product", "stock"}
    # At the end: nothing more, and the cursor stays put.
    page = _page(hub_client, cursor)
    assert page["changes"] == [] and page["cursor"] == cursor and page["remaining"] == 0


def test_product_changes_carry_their_variants(hub_client):
    changes = _page(hub_client, 0, limit=100)["changes"]
    product = next(c for c in changes if c["kind"] == "product")
    assert product["key"] == product["data"]["ref"]
    assert product["data"]["variants"]
    assert all(v["sku"].startswith(product["data"]["ref"]) for v in product["data"]["variants"])


def test_a_store_sees_global_changes_and_its_own_only(hub_server):
    secrets = store_secrets(hub_server.data)
    lyon = HubClient(hub_server.url, LYON, secrets[LYON])
    paris = HubClient(hub_server.url, PARIS, secrets[PARIS])
    start = _page(lyon, 0, limit=1)
    db = hub_db(hub_server.data)
    last = db.execute("SELECT max(seq) FROM changes").fetchone()[0]
    data = {"store_id": PARIS, "sku": "X", "qty": 1, "as_of": "2026-11-22T14:02:00Z"}
    with hdb.write(db):
        for_paris = append_change(db, "stock", f"{PARIS}/X", data, store_id=PARIS)
        for_all = append_change(db, "stock", f"{PARIS}/Y", {**data, "sku": "Y"})
    db.close()
    assert start["remaining"] > 0
    lyon_page = _page(lyon, last)
    paris_page = _page(paris, last)
    assert [c["seq"] for c in lyon_page["changes"]] == [for_all]
    assert [c["seq"] for c in paris_page["changes"]] == [for_paris, for_all]
    # Lyon's cursor moves past Paris's change, so it never scans it again.
    assert lyon_page["cursor"] == paris_page["cursor"] == str(for_all)


def test_a_page_of_only_other_stores_changes_still_advances_the_cursor(hub_server):
    secrets = store_secrets(hub_server.data)
    lyon = HubClient(hub_server.url, LYON, secrets[LYON])
    db = hub_db(hub_server.data)
    last = db.execute("SELECT max(seq) FROM changes").fetchone()[0]
    with hdb.write(db):
        seq = append_change(db, "stock", f"{PARIS}/X", {"x": 1}, store_id=PARIS)
    db.close()
    page = _page(lyon, last, wait=1)
    assert page["changes"] == [] and page["cursor"] == str(seq)


def test_long_poll_answers_soon_after_another_process_writes(hub_client, hub_server):
    cursor = _page(hub_client, 0, limit=2000)["cursor"]
    while True:
        page = _page(hub_client, cursor, limit=2000)
        cursor = page["cursor"]
        if not page["more"]:
            break
    got: dict = {}

    def poll():
        started = time.monotonic()
        got["resp"] = hub_client.changes(since=cursor, wait=20, timeout=30)
        got["at"] = time.monotonic()
        got["held"] = got["at"] - started

    seen = _nonces(hub_server, LYON)
    t = threading.Thread(target=poll)
    t.start()
    # The poll is at the hub (its signed request was accepted) before anything is written.
    wait_for(lambda: _nonces(hub_server, LYON) - seen, 10, "the long poll to reach the hub")
    # Another process writes to the hub's database: a new store is a global change.
    write_started = time.monotonic()
    done = run_hub("add-store", "--data", str(hub_server.data), "--name", "Lille", "--json")
    written = time.monotonic()
    assert done.returncode == 0, done.stderr
    t.join(timeout=25)
    page = got["resp"].json()
    validate(page, "ChangesPage")
    assert [c["kind"] for c in page["changes"]] == ["store"]
    assert page["changes"][0]["data"]["name"] == "Lille"
    # It did wait: asked before the write began, answered with the write, after it.
    assert got["at"] > write_started
    # Woken by the write, not by the end of the 20 s wait (speed is for benchmarks).
    assert got["at"] - written < 10, f"answered {got['at'] - written:.2f}s after the write"


def test_long_poll_returns_empty_after_wait(hub_client, hub_server):
    db = hub_db(hub_server.data)
    last = db.execute("SELECT max(seq) FROM changes").fetchone()[0]
    db.close()
    started = time.monotonic()
    page = _page(hub_client, last, wait=1)
    held = time.monotonic() - started
    assert page["changes"] == [] and page["cursor"] == str(last) and not page["more"]
    assert 1.0 <= held < 10  # it waited, then answered


def test_long_poll_wakes_up_for_a_transaction_by_another_store(hub_client, hub_server):
    paris = HubClient(hub_server.url, PARIS, store_secrets(hub_server.data)[PARIS])
    db = hub_db(hub_server.data)
    last = db.execute("SELECT max(seq) FROM changes").fetchone()[0]
    sku = db.execute("SELECT sku FROM variants LIMIT 1").fetchone()[0]
    db.close()
    got: dict = {}
    seen = _nonces(hub_server, LYON)
    t = threading.Thread(target=lambda: got.update(r=hub_client.changes(since=last, wait=25)))
    t.start()
    wait_for(lambda: _nonces(hub_server, LYON) - seen, 10, "the long poll to reach the hub")
    started = time.monotonic()
    res = paris.post_transactions([movement(sku, -1)]).json()["results"][0]
    t.join(timeout=30)
    assert time.monotonic() - started < 15  # woken by the transaction, not the 25 s wait
    [change] = got["r"].json()["changes"]
    assert change["seq"] == res["result"]["seq"] and change["key"] == f"{PARIS}/{sku}"


def test_bad_query_parameters_are_400(hub_client):
    for qs in ("since=-1", "since=abc", "wait=31", "limit=0", "limit=2001", "wait=1.5"):
        resp = hub_client.request("GET", f"/api/v1/changes?{qs}")
        assert resp.status_code == 400, qs
        body = resp.json()
        validate(body, "Error")
        assert body["error"] == "bad_request"
