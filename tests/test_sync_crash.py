"""kill -9 of the store server at random moments while staff record stock and it syncs.

Each round starts ``kiosk serve`` with a hub configured, runs a burst of
``kiosk stock adjust`` commands, and kills the server (SIGKILL: no cleanup at all) at a
random moment of it. After every restart, every movement a command acknowledged
(exit status 0) must reach the hub exactly once, and the store database must pass
``PRAGMA integrity_check``.

``make test`` runs 20 rounds; ``make soak`` runs 300 (``KIOSK_SOAK_ROUNDS``). A failing
run prints its random seed: ``KIOSK_SOAK_SEED=... make soak`` replays the same plan.
"""

from __future__ import annotations

import os
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from app import db as dbmod

from .conftest import Server
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, adjust_cli, hub_levels, hub_transactions, store_env, wait_for

ROUNDS = int(os.environ.get("KIOSK_SOAK_ROUNDS") or os.environ.get("ROUNDS") or 20)
BURST = 4


def _drained(url: str) -> bool:
    h = requests.get(url + "/healthz", timeout=5).json()
    return h["outbox_depth"] == 0 and h["parked"] == 0


def _check(hub_data, done: list[tuple[str, str, int]], initial: dict[str, int]) -> None:
    counts = hub_transactions(hub_data, [i for i, _, _ in done])
    assert set(counts.values()) <= {1}, {i: c for i, c in counts.items() if c != 1}
    expected = dict(initial)
    for _, sku, delta in done:
        expected[sku] += delta
    levels = hub_levels(hub_data)
    assert {s: levels[s] for s in expected} == expected


def test_kill_9_during_bursts_loses_and_duplicates_nothing(hub_server, synced_store):
    seed = int(os.environ.get("KIOSK_SOAK_SEED") or time.time_ns() % 1_000_000)
    print(f"KIOSK_SOAK_SEED={seed} ROUNDS={ROUNDS}")
    rng = random.Random(seed)
    env = store_env(hub_server.url, hub_server.data)
    db = dbmod.connect(dbmod.db_path(synced_store))
    skus = [
        r[0]
        for r in db.execute(
            "SELECT sku FROM stock_levels WHERE store_id = ? ORDER BY sku LIMIT 6", [LYON]
        )
    ]
    db.close()
    initial = {s: hub_levels(hub_server.data)[s] for s in skus}
    done: list[tuple[str, str, int]] = []
    kills_with_backlog = 0
    for _ in range(ROUNDS):
        server = Server(synced_store, env).start()
        # After the restart, everything acknowledged so far is at the hub, once.
        wait_for(lambda s=server: _drained(s.url), 20, "the outbox to drain after a restart")
        _check(hub_server.data, done, initial)
        plan = [(rng.choice(skus), rng.choice((-2, -1, 1, 2))) for _ in range(BURST)]
        with ThreadPoolExecutor(BURST) as pool:
            futures = [pool.submit(adjust_cli, synced_store, sku, d) for sku, d in plan]
            # Before, during or after the worker's push (it looks every second).
            time.sleep(rng.uniform(0, 1.6))
            os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait()
            ids = [f.result() for f in futures]
        done += [(i, sku, d) for i, (sku, d) in zip(ids, plan, strict=True) if i]
        db = dbmod.connect(dbmod.db_path(synced_store))
        try:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            kills_with_backlog += bool(
                db.execute("SELECT count(*) FROM outbox WHERE acked_at IS NULL").fetchone()[0]
            )
        finally:
            db.close()
    server = Server(synced_store, env).start()
    try:
        wait_for(lambda: _drained(server.url), 20, "the outbox to drain at the end")
    finally:
        server.stop()
    _check(hub_server.data, done, initial)
    assert len(done) == ROUNDS * BURST  # the server's death never fails a local command
    print(f"{ROUNDS} kills, {kills_with_backlog} with movements still unsent")
