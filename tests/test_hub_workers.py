"""Several hub processes on one database: exactly-once across processes, and
``kiosk hub serve --workers N`` (issue 11).

Run on both backends: SQLite (the processes share hub.db) and, under
``make test-hub-postgresql``, PostgreSQL (they share the database URL).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter

import requests

from .conftest import Server
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import LYON, HubClient, hub_db, hub_env, movement, store_secrets

PROCESSES = 4
ROUNDS = 30


def _levels(data, skus):
    db = hub_db(data)
    try:
        got = dict(
            db.execute("SELECT sku, qty FROM stock_levels WHERE store_id = ?", [LYON]).fetchall()
        )
        return {s: got.get(s) for s in skus}
    finally:
        db.close()


def _transaction_rows(data, ids):
    db = hub_db(data)
    try:
        found = Counter(r[0] for r in db.execute("SELECT id FROM transactions").fetchall())
        return {i: found[i] for i in ids}
    finally:
        db.close()


def test_four_hub_processes_posting_the_same_ids_at_once_apply_each_once(hub_data, hub_factory):
    hubs = [hub_factory(hub_data) for _ in range(PROCESSES)]
    secret = store_secrets(hub_data)[LYON]
    clients = [HubClient(h.url, LYON, secret) for h in hubs]
    db = hub_db(hub_data)
    try:
        skus = [
            r[0]
            for r in db.execute(
                "SELECT sku FROM stock_levels WHERE store_id = ? ORDER BY sku LIMIT 3", [LYON]
            ).fetchall()
        ]
    finally:
        db.close()
    before = _levels(hub_data, skus)

    # Each round: one batch of fresh ids (a movement of -1 on each of 3 SKUs), posted by
    # all four processes at the same instant, as a store retrying through a load
    # balancer would.
    all_ids: list[str] = []
    statuses: dict[str, list[str]] = {}
    errors: list[str] = []
    for _ in range(ROUNDS):
        items = [movement(sku, -1) for sku in skus]
        for item in items:
            all_ids.append(item["id"])
        body = json.dumps({"transactions": items}).encode()
        gate = threading.Barrier(PROCESSES)

        def post(client: HubClient, body: bytes = body, gate: threading.Barrier = gate) -> None:
            gate.wait(timeout=10)
            try:
                resp = client.request("POST", "/api/v1/transactions", body, timeout=30)
            except requests.RequestException as exc:
                errors.append(repr(exc))
                return
            if resp.status_code != 200:
                errors.append(f"{resp.status_code} {resp.text[:200]}")
                return
            for result in resp.json()["results"]:
                statuses.setdefault(result["id"], []).append(result["status"])

        threads = [threading.Thread(target=post, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors[:5]
    # Every id: answered by all four, accepted by exactly one, a duplicate for the others.
    for tx_id in all_ids:
        got = sorted(statuses[tx_id])
        assert got == ["accepted"] + ["duplicate"] * (PROCESSES - 1), (tx_id, got)
    # One row each, and the stock moved once per round, not four times.
    assert set(_transaction_rows(hub_data, all_ids).values()) == {1}
    after = _levels(hub_data, skus)
    assert after == {s: before[s] - ROUNDS for s in skus}


def _first_sku(data) -> str:
    db = hub_db(data)
    try:
        return db.execute(
            "SELECT sku FROM stock_levels WHERE store_id = ? ORDER BY sku LIMIT 1", [LYON]
        ).fetchone()[0]
    finally:
        db.close()


class WorkersHub(Server):
    """``kiosk hub serve --workers 2`` on this test's hub."""

    command = ("hub", "serve", "--workers", "2")
    health_path = "/api/v1/status"
    log_name = "hub-workers-{port}.log"


def _worker_pids(parent: int) -> set[int]:
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                children.add(int(entry))
    return children


def _two_workers(parent: int, gone: int | None = None) -> set[int] | None:
    """The two worker pids of ``parent`` (without ``gone``), or None while not so."""
    pids = _worker_pids(parent)
    return pids if len(pids) == 2 and gone not in pids else None


def _wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_workers_share_the_port_and_a_dead_worker_is_started_again(hub_data):
    server = WorkersHub(hub_data, hub_env(hub_data)).start()
    try:
        workers = _wait_for(lambda: _two_workers(server.proc.pid), what="two workers")
        secret = store_secrets(hub_data)[LYON]
        client = HubClient(server.url, LYON, secret)
        sku = _first_sku(hub_data)
        # A change posted through one worker reaches long-polls held by both workers
        # (each process's feed waiter sees every commit): 6 polls on fresh connections,
        # which the kernel spreads over the two processes.
        cursor = 0
        while page := client.changes(since=cursor, limit=1000).json():
            cursor = page["cursor"]
            if not page["changes"]:
                break
        pages: list[dict] = []

        def poll() -> None:
            fresh = HubClient(server.url, LYON, secret)
            pages.append(fresh.changes(since=cursor, wait=20).json())

        pollers = [threading.Thread(target=poll) for _ in range(6)]
        for t in pollers:
            t.start()
        resp = HubClient(server.url, LYON, secret).post_transactions([movement(sku, -1)])
        assert resp.status_code == 200 and resp.json()["results"][0]["status"] == "accepted"
        seq = resp.json()["results"][0]["result"]["seq"]
        for t in pollers:
            t.join(timeout=30)
        assert len(pages) == 6
        assert all(seq in [c["seq"] for c in page["changes"]] for page in pages)
        # Killing a worker: the hub keeps answering, and the worker is replaced.
        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        replaced = _wait_for(
            lambda: _two_workers(server.proc.pid, gone=victim), what="a replacement worker"
        )
        assert victim not in replaced
        for _ in range(10):
            assert requests.get(server.url + "/api/v1/status", timeout=5).ok
    finally:
        server.stop()
    # SIGTERM to the parent stops every worker.
    _wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in replaced), what="workers gone")
