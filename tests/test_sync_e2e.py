"""Store ⇄ hub sync against real processes: first sync, hub outage, faults, two workers.

Every transaction the CLI acknowledged must reach the hub exactly once: the hub holds
one row per id, and its level is the initial level plus the sum of the deltas.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from app.core import db as dbmod

from .conftest import ROOT, run_kiosk, staff_login
from .faultproxy import FaultProxy
from .hub_fixtures import HubServer
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import (
    LYON,
    adjust_cli,
    hub_levels,
    hub_transactions,
    store_env,
    wait_for,
)


def _skus(data: Path, n: int = 4) -> list[str]:
    db = dbmod.connect(dbmod.db_path(data))
    try:
        rows = db.execute(
            "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 ORDER BY sku LIMIT ?",
            [LYON, n],
        ).fetchall()
    finally:
        db.close()
    return [r[0] for r in rows]


def _burst(data: Path, plan: list[tuple[str, int]], workers: int = 4) -> list[tuple[str, str, int]]:
    """Run ``kiosk stock adjust`` for each (sku, delta), a few at once; (id, sku, delta)
    of each one acknowledged (exit status 0)."""
    with ThreadPoolExecutor(workers) as pool:
        ids = list(pool.map(lambda p: adjust_cli(data, *p), plan))
    return [(i, sku, d) for i, (sku, d) in zip(ids, plan, strict=True) if i]


def _health(url: str) -> dict:
    return requests.get(url + "/healthz", timeout=5).json()


def _drained(url: str) -> bool:
    h = _health(url)
    return h["outbox_depth"] == 0 and h["parked"] == 0


def _assert_exactly_once(hub_data: Path, done: list[tuple[str, str, int]], initial: dict) -> None:
    counts = hub_transactions(hub_data, [i for i, _, _ in done])
    assert set(counts.values()) == {1}, {i: c for i, c in counts.items() if c != 1}
    expected = dict(initial)
    for _, sku, delta in done:
        expected[sku] += delta
    levels = hub_levels(hub_data)
    assert {s: levels[s] for s in expected} == expected


def _retry_now(url: str, data) -> None:
    """Press "Réessayer maintenant" on the staff status screen, logged in, CSRF and all."""
    session = requests.Session()
    staff_login(session, data, url)
    page = session.get(url + "/staff/status", timeout=5).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = session.post(url + "/staff/sync/retry", data={"csrf_token": token}, timeout=5)
    assert r.ok and "sync-status" in r.text


def test_first_sync_fills_an_empty_store_with_progress(hub_server, tmp_path):
    env = store_env(hub_server.url, hub_server.data)
    data = tmp_path / "fresh"
    done = run_kiosk("sync", "--data", str(data), "--once", env=env)
    assert done.returncode == 0, done.stderr
    assert "changes" in done.stderr  # progress shown while the catalog arrives
    assert re.search(r"received \d+ changes", done.stdout)
    db = dbmod.connect(dbmod.db_path(data))
    assert db.execute("SELECT count(*) FROM products").fetchone()[0] == 200
    assert db.execute("SELECT id FROM stores WHERE is_self = 1").fetchall() == [(LYON,)]
    assert db.execute("SELECT count(*) FROM products_fts").fetchone()[0] == 200
    # The levels held are the hub's.
    hub = hub_levels(hub_server.data)
    mine = dict(db.execute("SELECT sku, qty FROM stock_levels WHERE store_id = ?", [LYON]))
    assert mine == hub


@pytest.mark.hub  # its own hub, on this run's backend (a database of the cluster on PostgreSQL)
def test_first_sync_of_2000_products_fills_the_store(tmp_path, hub_factory, request):
    from .hub_fixtures import DATABASE_MARK, HUB_BACKEND, run_hub

    hub_data = tmp_path / "hub"
    if HUB_BACKEND == "postgresql":
        hub_data.mkdir()
        cluster = request.getfixturevalue("pg_cluster")
        url = cluster.create_database(f"hub_2000_{os.getpid()}_{tmp_path.name}"[:63])
        (hub_data / DATABASE_MARK).write_text(url)
    seeded = run_hub("seed", "--data", str(hub_data), "--products", "2000")
    assert seeded.returncode == 0, seeded.stderr
    hub = hub_factory(hub_data)
    started = time.monotonic()
    done = run_kiosk(
        "sync", "--data", str(tmp_path / "store"), "--once", env=store_env(hub.url, hub_data)
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    print(f"first sync of 2,000 products: {elapsed:.1f}s; {done.stdout.strip()}")
    store = dbmod.connect(dbmod.db_path(tmp_path / "store"))
    assert store["products"].count == 2000
    assert (
        store.execute("SELECT count(*) FROM stock_levels").fetchone()[0]
        == 3 * store["variants"].count
    )


def test_hub_down_during_a_burst_then_up(hub_data, synced_store, server_factory):
    hub = HubServer(hub_data)  # its port is chosen, nothing listens yet
    store = server_factory(synced_store, store_env(hub.url, hub_data))
    skus = _skus(synced_store)
    initial = {s: hub_levels(hub_data)[s] for s in skus}
    plan = [(skus[i % len(skus)], (-1, 2, -2, 1)[i % 4]) for i in range(16)]

    done = _burst(synced_store, plan)

    assert len(done) == len(plan)
    health = _health(store.url)
    assert health["online"] is False and health["hub_configured"] is True
    assert health["outbox_depth"] == len(plan)
    assert health["oldest_unsent_age_s"] is not None and health["last_error"]
    hub.start()
    try:
        _retry_now(store.url, synced_store)  # skip whatever backoff the worker is sleeping
        wait_for(lambda: _drained(store.url), 20, "the outbox to drain")
        _assert_exactly_once(hub_data, done, initial)
        assert wait_for(lambda: _health(store.url)["online"], 10, "online")
    finally:
        hub.stop()


def test_faults_between_store_and_hub_lose_and_duplicate_nothing(
    hub_server, synced_store, server_factory
):
    # Faults hit the store's transaction POSTs; the feed's GETs and health reports pass.
    proxy = FaultProxy(
        hub_server.port, match=lambda method, path: path.startswith("/api/v1/transactions")
    ).start()
    try:
        store = server_factory(synced_store, store_env(proxy.url, hub_server.data, timeout=1.5))
        skus = _skus(synced_store)
        initial = {s: hub_levels(hub_server.data)[s] for s in skus}
        done: list[tuple[str, str, int]] = []
        for n, fault in enumerate(["refuse", "hang", "500", "503", "drop", "reset"]):
            if fault == "refuse":
                proxy.refuse_for(1.5)
            else:
                proxy.inject(fault)
            plan = [(skus[(n + k) % len(skus)], (-1, 1, -2)[k]) for k in range(3)]
            done += _burst(synced_store, plan, workers=3)
            wait_for(lambda: _drained(store.url), 20, f"the outbox to drain after {fault}")
            assert proxy.pending() == 0
        assert proxy.done == ["hang", "500", "503", "drop", "reset"]
        _assert_exactly_once(hub_server.data, done, initial)
        # The store's view agrees with the hub once everything is acknowledged.
        db = dbmod.connect(dbmod.db_path(synced_store))
        from app.store.domain.stock import levels

        wait_for(
            lambda: (
                levels(db, skus, clamp=False) == {s: hub_levels(hub_server.data)[s] for s in skus}
            ),
            10,
            "the store's levels to match the hub's",
        )
    finally:
        proxy.stop()


def test_two_workers_flushing_one_outbox_send_each_row_once(
    hub_server, synced_store, server_factory
):
    env = store_env(hub_server.url, hub_server.data)
    skus = _skus(synced_store)
    initial = {s: hub_levels(hub_server.data)[s] for s in skus}
    # Queue a backlog first, so both workers find it at once when they start.
    backlog = _burst(synced_store, [(skus[i % len(skus)], 1) for i in range(12)])
    log = (synced_store / "sync.log").open("ab")
    second = subprocess.Popen(
        [sys.executable, "-m", "app", "sync", "--data", str(synced_store)],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        store = server_factory(synced_store, env)
        more = _burst(synced_store, [(skus[i % len(skus)], -1) for i in range(12)])
        wait_for(lambda: _drained(store.url), 20, "the outbox to drain")
    finally:
        second.terminate()
        second.wait(10)
    _assert_exactly_once(hub_server.data, backlog + more, initial)
    db = dbmod.connect(dbmod.db_path(synced_store))
    # Leases: no row was sent twice, not even to be answered "duplicate".
    assert db.execute("SELECT max(attempts) FROM outbox").fetchone()[0] == 1
