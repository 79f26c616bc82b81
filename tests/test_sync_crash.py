"""kill -9 of the store server at random moments while staff record stock and it syncs.

Each round starts ``kiosk serve`` with a hub configured, runs a burst of
``kiosk stock adjust`` commands, and kills the server (SIGKILL: no cleanup at all).
After every restart, every movement a command acknowledged (exit status 0) must reach
the hub exactly once, and the store database must pass ``PRAGMA integrity_check``.

The store talks to the hub through tests/faultproxy.py, which holds every push
``SLOW_S`` (half before the hub sees it, half after it answered), so a push is open
long enough to be killed in. Most rounds wait for a push to be open and kill at a
random moment of it; the others kill at a random moment of the burst. The proxy's log
says which kills really landed while a push was open: the test counts them and fails
when too few did (a run where none did proves nothing about crashes mid-push).

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

from app.core import db as dbmod

from .conftest import Server
from .faultproxy import FaultProxy
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, adjust_cli, hub_levels, hub_transactions, store_env, wait_for

ROUNDS = int(os.environ.get("KIOSK_SOAK_ROUNDS") or os.environ.get("ROUNDS") or 20)
BURST = 4
SLOW_S = 0.6  # how long the proxy holds each push
IN_FLIGHT_SHARE = 0.75  # rounds that aim the kill at an open push
PUSH = "/api/v1/transactions"


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


def _opened_since(proxy: FaultProxy, moment: float) -> bool:
    return any(e.ended is None and e.started > moment for e in proxy.log(PUSH))


def test_kill_9_during_bursts_loses_and_duplicates_nothing(hub_server, synced_store):
    seed = int(os.environ.get("KIOSK_SOAK_SEED") or time.time_ns() % 1_000_000)
    print(f"KIOSK_SOAK_SEED={seed} ROUNDS={ROUNDS}")
    rng = random.Random(seed)
    proxy = FaultProxy(hub_server.port, slow_s=SLOW_S).start()
    proxy.fail_when(lambda method, path, body: method == "POST" and path == PUSH, "slow")
    env = store_env(proxy.url, hub_server.data, timeout=5)
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
    aimed = 0  # rounds that waited for an open push before killing
    kills_in_flight = 0  # kills that landed while a push of the killed server was open
    try:
        for _ in range(ROUNDS):
            started = time.monotonic()
            server = Server(synced_store, env).start()
            # After the restart, everything acknowledged so far is at the hub, once.
            wait_for(lambda s=server: _drained(s.url), 30, "the outbox to drain after a restart")
            _check(hub_server.data, done, initial)
            # The feed may have settled the outbox while a resend is still held.
            wait_for(lambda: not proxy.in_flight(PUSH), 10, "the previous pushes to end")
            plan = [(rng.choice(skus), rng.choice((-2, -1, 1, 2))) for _ in range(BURST)]
            burst = time.monotonic()
            with ThreadPoolExecutor(BURST) as pool:
                futures = [pool.submit(adjust_cli, synced_store, sku, d) for sku, d in plan]
                if rng.random() < IN_FLIGHT_SHARE:
                    aimed += 1
                    wait_for(lambda b=burst: _opened_since(proxy, b), 15, "a push", step=0.01)
                    time.sleep(rng.uniform(0, SLOW_S * 0.8))  # a random moment of it
                else:
                    time.sleep(rng.uniform(0, 1.6))  # before, during or after a push
                before = time.monotonic()
                os.kill(server.proc.pid, signal.SIGKILL)
                server.proc.wait()
                after = time.monotonic()
                ids = [f.result() for f in futures]
            # Measured, not assumed: a push of this server opened before the kill and
            # still held by the proxy once the process was gone.
            kills_in_flight += any(
                e.started > started and e.open_during(before, after) for e in proxy.log(PUSH)
            )
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
            wait_for(lambda: _drained(server.url), 30, "the outbox to drain at the end")
        finally:
            server.stop()
        _check(hub_server.data, done, initial)
    finally:
        proxy.stop()
    assert len(done) == ROUNDS * BURST  # the server's death never fails a local command
    print(
        f"{ROUNDS} kills: {kills_in_flight} while a push was in flight ({aimed} aimed at one), "
        f"{kills_with_backlog} with movements still unsent"
    )
    # The point of the test: kills mid-push happened, and most aimed ones landed.
    assert kills_in_flight >= 1
    assert kills_in_flight >= aimed // 2, (kills_in_flight, aimed)
