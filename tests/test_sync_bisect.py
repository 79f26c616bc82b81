"""One transaction the hub keeps failing on never stops a store's sync (issue 9).

The push worker bisects a batch the hub fails on (a 5xx, no answer) while the hub
answers a control request, parks the one transaction that fails alone STRIKES times,
and sends everything else exactly once, in outbox order. A hub that fails on
everything parks nothing. In-process tests check the logic exactly; the end-to-end
tests run a real store server and a real hub behind tests/faultproxy.py.
"""

from __future__ import annotations

import json
import re

import pytest
import requests

from app.core import db as dbmod
from app.store.domain import outbox
from app.store.domain.acks import ACK_HOOKS
from app.store.domain.stock import adjust
from app.store.sync import state
from app.store.sync.client import HubError
from app.store.sync.push import PARK_REASON, STRIKES, Narrowing, push_once

from .conftest import staff_login
from .faultproxy import FaultProxy
from .hub_fixtures import hub_db
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import (
    LYON,
    adjust_cli,
    hub_transactions,
    inprocess_client,
    store_env,
    wait_for,
)


def _store(synced_store):
    return dbmod.connect(dbmod.db_path(synced_store))


def _sku(db) -> str:
    return db.execute(
        "SELECT sku FROM stock_levels WHERE store_id = ? ORDER BY sku LIMIT 1", [LYON]
    ).fetchone()[0]


def _poisoned(link, poison: set[str], status: int = 500) -> list[list[str]]:
    """Make the in-process hub answer ``status`` to any batch holding a poison id; the
    ids of every transaction POST, in order, are returned (filled as they are sent)."""
    sent: list[list[str]] = []

    def before(request):
        link.fail_with = None
        if request.method == "POST" and request.path_url.startswith("/api/v1/transactions"):
            ids = [t["id"] for t in json.loads(request.body)["transactions"]]
            sent.append(ids)
            if poison & set(ids):
                link.fail_with = status

    link.before = before
    return sent


def _push_until_done(db, client, rounds: int = 20) -> list[Narrowing]:
    """Call push_once as the worker does until a round ends without a strike."""
    strikes = []
    for _ in range(rounds):
        try:
            push_once(db, client)
        except Narrowing as exc:
            strikes.append(exc)
            continue
        return strikes
    raise AssertionError(f"still narrowing after {rounds} rounds")


def _hub_order(hub_data, ids: list[str]) -> list[str]:
    """The ids the hub applied, in the order it applied them (the seq of each
    movement's stock change, in its result: no rowid on PostgreSQL)."""
    db = hub_db(hub_data)
    try:
        rows = db.execute("SELECT id, result FROM transactions").fetchall()
    finally:
        db.close()
    mine = [(json.loads(result)["seq"], i) for i, result in rows if i in set(ids)]
    return [i for _seq, i in sorted(mine)]


@pytest.mark.parametrize("position", [0, 6, 12])
def test_the_one_transaction_failing_alone_is_parked_and_the_rest_go_once_in_order(
    hub_data, synced_store, position
):
    db = _store(synced_store)
    client, link = inprocess_client(hub_data)
    sku = _sku(db)
    ids = [adjust(db, sku, 1)["id"] for _ in range(13)]
    poison = ids[position]
    sent = _poisoned(link, {poison})

    strikes = _push_until_done(db, client)

    # Failed alone STRIKES times: twice handed back to the worker, the third parks it.
    assert [(s.tx_id, s.strikes) for s in strikes] == [(poison, n) for n in range(1, STRIKES)]
    assert sum(batch == [poison] for batch in sent) == STRIKES
    others = [i for i in ids if i != poison]
    assert hub_transactions(hub_data, ids) == {i: int(i != poison) for i in ids}
    assert _hub_order(hub_data, ids) == others  # outbox order kept
    [parked] = outbox.parked(db)
    assert parked["id"] == poison and parked["parked_reason"] == PARK_REASON
    assert parked["parked_message"] == (
        f"le serveur central a échoué {STRIKES} fois sur cette transaction seule : "
        "HTTP 500 injected"
    )
    assert outbox.stats(db)["depth"] == 0
    assert state.narrowing(db) is None
    # Bisection, not one by one: far fewer requests than rows (log2(13) + strikes + ...).
    assert len(sent) <= 2 * 4 + STRIKES + 3, sent


def test_two_poisoned_transactions_are_both_parked(hub_data, synced_store):
    db = _store(synced_store)
    client, link = inprocess_client(hub_data)
    sku = _sku(db)
    ids = [adjust(db, sku, -1)["id"] for _ in range(9)]
    poison = {ids[2], ids[7]}
    _poisoned(link, poison, status=502)
    _push_until_done(db, client, rounds=40)
    assert {p["id"] for p in outbox.parked(db)} == poison
    assert hub_transactions(hub_data, ids) == {i: int(i not in poison) for i in ids}
    assert outbox.stats(db)["depth"] == 0


@pytest.mark.parametrize("status", [500, 503, None])
def test_a_hub_failing_every_request_parks_nothing(hub_data, synced_store, status):
    db = _store(synced_store)
    client, link = inprocess_client(hub_data)
    sku = _sku(db)
    ids = [adjust(db, sku, 1)["id"] for _ in range(4)]
    single = [adjust(db, sku, 1)["id"]]
    calls = []

    def down(request):
        calls.append(request.body)
        if status is None:
            raise requests.ConnectionError("reset")
        link.fail_with = status

    link.before = down
    for _ in range(3 * STRIKES):
        with pytest.raises(HubError) as failure:
            push_once(db, client)
        assert not isinstance(failure.value, Narrowing)
    # Each failure was checked with a control request (an empty batch), which failed
    # too: nothing was blamed. A 503 with Retry-After is obeyed without asking.
    controls = calls.count(b'{"transactions":[]}')
    assert controls == (0 if status == 503 else 3 * STRIKES)
    assert outbox.parked(db) == [] and outbox.stats(db)["depth"] == 5
    assert state.narrowing(db) is None
    link.before, link.fail_with = None, None
    assert push_once(db, client).accepted == 5
    assert hub_transactions(hub_data, ids + single) == dict.fromkeys(ids + single, 1)


def test_a_lone_transaction_with_the_hub_down_is_never_parked(hub_data, synced_store):
    """Alone in the outbox, a transaction fails alone; the control fails too: no strike."""
    db = _store(synced_store)
    client, link = inprocess_client(hub_data)
    tx = adjust(db, _sku(db), 1)["id"]
    link.fail_with = 500
    for _ in range(3 * STRIKES):
        with pytest.raises(HubError) as failure:
            push_once(db, client)
        assert not isinstance(failure.value, Narrowing)
    assert outbox.parked(db) == [] and state.narrowing(db) is None
    link.fail_with = None
    assert push_once(db, client).accepted == 1
    assert hub_transactions(hub_data, [tx]) == {tx: 1}


def test_rate_limits_and_retry_after_never_start_a_search(hub_data, synced_store):
    db = _store(synced_store)
    client, link = inprocess_client(hub_data)
    sku = _sku(db)
    ids = [adjust(db, sku, 1)["id"] for _ in range(3)]
    _poisoned(link, {ids[1]}, status=429)
    for _ in range(3):
        with pytest.raises(HubError) as failure:
            push_once(db, client)
        assert failure.value.status == 429 and not isinstance(failure.value, Narrowing)
    assert state.narrowing(db) is None and outbox.parked(db) == []


def test_a_transient_failure_parks_nothing(hub_data, synced_store):
    """The hub fails once on a batch, then works: the search ends with nothing parked."""
    db = _store(synced_store)
    client, link = inprocess_client(hub_data)
    sku = _sku(db)
    ids = [adjust(db, sku, 1)["id"] for _ in range(8)]
    failures = [500]

    def once(request):
        link.fail_with = None
        if request.method == "POST" and b'"transactions":[{' in request.body and failures:
            link.fail_with = failures.pop()

    link.before = once
    stats = push_once(db, client)
    assert stats.accepted == 8 and stats.parked == 0
    assert hub_transactions(hub_data, ids) == dict.fromkeys(ids, 1)
    assert state.narrowing(db) is None and outbox.parked(db) == []


def test_the_search_survives_a_restart_without_losing_or_doubling_a_row(hub_data, synced_store):
    db = _store(synced_store)
    client, link = inprocess_client(hub_data)
    sku = _sku(db)
    ids = [adjust(db, sku, 1)["id"] for _ in range(10)]
    poison = ids[4]
    _poisoned(link, {poison})
    with pytest.raises(Narrowing):
        push_once(db, client)
    narrowed = state.narrowing(db)
    assert narrowed == {**narrowed, "last": poison, "strikes": 1}
    assert state.snapshot(db, hub_configured=True)["narrowing"]["to_check"] == 1
    db.close()
    # A restart: new connection, new client; the search resumes at the same row.
    db = _store(synced_store)
    client, link = inprocess_client(hub_data)
    sent = _poisoned(link, {poison})
    strikes = _push_until_done(db, client)
    assert [s.strikes for s in strikes] == list(range(2, STRIKES))
    assert sent[0] == [poison]  # resumed, not started over
    assert [p["id"] for p in outbox.parked(db)] == [poison]
    assert hub_transactions(hub_data, ids) == {i: int(i != poison) for i in ids}
    assert outbox.stats(db)["depth"] == 0


def test_a_window_settled_elsewhere_ends_the_search(hub_data, synced_store):
    """Head office discards the suspect row (or the feed acknowledges it): the saved
    search is dropped and the queue goes on."""
    db = _store(synced_store)
    client, _ = inprocess_client(hub_data)
    ids = [adjust(db, _sku(db), 1)["id"] for _ in range(3)]
    state.set_narrowing(db, {"last": ids[1], "size": 2, "strikes": 0, "error": "x"})
    outbox.mark_acked(db, ids[1], None, hooks=ACK_HOOKS)
    assert state.snapshot(db, hub_configured=True)["narrowing"] is None
    assert push_once(db, client).accepted == 2
    assert state.narrowing(db) is None


# -- A real store server and a real hub, the fault proxy between them -----------------

PUSH = "/api/v1/transactions"


def _is_push(method: str, path: str) -> bool:
    return method == "POST" and path.startswith(PUSH)


def _healthz(store) -> dict:
    return requests.get(store.url + "/healthz", timeout=5).json()


def _batch_ids(body: bytes) -> list[str]:
    return [t["id"] for t in json.loads(body)["transactions"]]


def _skus(data, n: int = 3) -> list[str]:
    db = _store(data)
    try:
        return [
            r[0]
            for r in db.execute(
                "SELECT sku FROM stock_levels WHERE store_id = ? ORDER BY sku LIMIT ?", [LYON, n]
            )
        ]
    finally:
        db.close()


def _press_retry(data) -> None:
    """Staff's "retry now", through the database as the status screen does it."""
    db = _store(data)
    try:
        state.request_retry(db)
    finally:
        db.close()


def _fleet_parked(hub_data) -> list[dict]:
    db = hub_db(hub_data)
    try:
        row = db.execute("SELECT parked FROM store_health WHERE store_id = ?", [LYON]).fetchone()
    finally:
        db.close()
    return json.loads(row[0]) if row else []


def test_a_store_server_parks_the_marked_transaction_and_sends_the_rest_once(
    hub_server, synced_store, server_factory
):
    marked: list[bytes] = []
    proxy = FaultProxy(hub_server.port).start()
    # The hub "fails" (500) on any batch holding the marked transaction, alone or not.
    proxy.fail_when(lambda method, path, body: _is_push(method, path) and marked[0] in body)
    proxy.cut()  # offline while the transactions are queued
    try:
        env = {**store_env(proxy.url, hub_server.data, timeout=2), "KIOSK_HEALTH_INTERVAL_S": "1"}
        store = server_factory(synced_store, env)
        skus = _skus(synced_store)
        ids = [adjust_cli(synced_store, skus[k % len(skus)], 1) for k in range(9)]
        assert all(ids)
        bad = ids[3]
        marked.append(bad.encode())
        assert _healthz(store)["outbox_depth"] == 9
        proxy.restore()
        _press_retry(synced_store)  # skip whatever backoff the offline worker is in

        wait_for(
            lambda: (h := _healthz(store))["outbox_depth"] == 0 and h["parked"] == 1,
            60,
            "every other transaction sent and the marked one parked",
        )
        # Everything else reached the hub exactly once; the marked one never did.
        assert hub_transactions(hub_server.data, ids) == {i: int(i != bad) for i in ids}
        db = _store(synced_store)
        [parked] = outbox.parked(db)
        message = (
            f"le serveur central a échoué {STRIKES} fois sur cette transaction seule : "
            "HTTP 500 proxy_fault"
        )
        assert (parked["id"], parked["parked_reason"]) == (bad, PARK_REASON)
        assert parked["parked_message"] == message
        unsettled = db.execute("SELECT id FROM outbox WHERE acked_at IS NULL").fetchall()
        assert unsettled == [(bad,)]  # the outbox is otherwise empty
        assert state.narrowing(db) is None
        db.close()
        # It failed alone exactly STRIKES times, and was never sent again once parked.
        pushes = [_batch_ids(e.body) for e in proxy.log(PUSH)]
        assert pushes.count([bad]) == STRIKES
        assert sum(bad in batch for batch in pushes) <= STRIKES + 6  # bisected, not forever
        assert _healthz(store)["narrowing"] is None

        # Staff see it, with the reason, on the sync screen...
        session = requests.Session()
        staff_login(session, synced_store, store.url)
        page = session.get(store.url + "/staff/status", timeout=5).text
        row = re.search(rf'<tr data-id="{bad}">.*?</tr>', page, re.S)
        assert row and PARK_REASON in row.group(0) and message in row.group(0)
        # ...and head office on the fleet dashboard's list of parked transactions.
        wait_for(
            lambda: (
                [(p["id"], p["reason"]) for p in _fleet_parked(hub_server.data)]
                == [(bad, PARK_REASON)]
            ),
            20,
            "the health report to carry the parked transaction",
        )
    finally:
        proxy.stop()


def test_a_store_server_facing_a_hub_that_fails_everything_parks_nothing(
    hub_server, synced_store, server_factory
):
    proxy = FaultProxy(hub_server.port).start()
    proxy.fail_when(lambda method, path, body: _is_push(method, path))
    proxy.cut()
    try:
        store = server_factory(synced_store, store_env(proxy.url, hub_server.data, timeout=2))
        skus = _skus(synced_store)
        ids = [adjust_cli(synced_store, skus[k % len(skus)], -1) for k in range(3)]
        proxy.restore()  # the link is up, the hub fails every transaction request

        def failed_rounds() -> int:
            _press_retry(synced_store)  # again and again: no waiting out the backoff
            # A round: the batch, then the control request; both answered 500.
            return sum(_batch_ids(e.body) == [] for e in proxy.log(PUSH)) >= 3 * STRIKES

        wait_for(failed_rounds, 60, f"{3 * STRIKES} failed rounds", step=0.3)
        h = _healthz(store)
        assert (h["parked"], h["outbox_depth"], h["narrowing"]) == (0, 3, None)
        assert h["online"] is False and "500" in h["last_error"]
        # Never narrowed down: every batch sent held all three.
        batches = [b for b in (_batch_ids(e.body) for e in proxy.log(PUSH)) if b]
        assert batches and all(b == ids for b in batches), batches

        proxy.clear_rules()  # the hub is back
        _press_retry(synced_store)
        wait_for(lambda: _healthz(store)["outbox_depth"] == 0, 30, "the outbox to drain")
        assert _healthz(store)["parked"] == 0
        assert hub_transactions(hub_server.data, ids) == dict.fromkeys(ids, 1)
    finally:
        proxy.stop()


def test_the_staff_screen_says_a_search_is_running(synced_store):
    from app.store.app import create_app

    app = create_app({"DATA_DIR": str(synced_store), "TESTING": True, "HUB_URL": "http://x.test"})
    db = _store(synced_store)
    ids = [adjust(db, _sku(db), 1)["id"] for _ in range(5)]
    state.set_narrowing(db, {"last": ids[3], "size": 4, "strikes": 0, "error": "HTTP 500"})
    client = app.test_client()
    staff_login(client, synced_store)
    page = client.get("/staff/status").get_data(as_text=True)
    notice = re.search(r'<p [^>]*data-field="narrowing">(.*?)</p>', page, re.S)
    assert notice and "le magasin cherche laquelle" in notice.group(1)
    assert "(4 à vérifier)" in notice.group(1)
    state.set_narrowing(db, None)
    assert 'data-field="narrowing"' not in client.get("/staff/status").get_data(as_text=True)


def test_failures_alone_are_forgotten_when_the_hub_fails_everything_meanwhile(
    hub_data, synced_store
):
    """Strikes count only on a hub that works otherwise: a control that fails between
    them (a flaky hub) starts the count again, so a healthy row is not parked."""
    db = _store(synced_store)
    client, link = inprocess_client(hub_data)
    tx = adjust(db, _sku(db), 1)["id"]
    _poisoned(link, {tx})
    with pytest.raises(Narrowing):
        push_once(db, client)
    with pytest.raises(Narrowing) as second:
        push_once(db, client)
    assert second.value.strikes == STRIKES - 1
    link.before, link.fail_with = None, 500  # now everything fails, the control too
    with pytest.raises(HubError) as down:
        push_once(db, client)
    assert not isinstance(down.value, Narrowing)
    assert state.narrowing(db)["strikes"] == 0 and outbox.parked(db) == []
    _poisoned(link, {tx})
    with pytest.raises(Narrowing) as again:
        push_once(db, client)
    assert again.value.strikes == 1  # counted from the start again
