"""Sync benchmarks (issue 3): `make bench` runs this after benchmarks/run.py.

1. Drain: 10,000 stock movements are queued in a store while its hub is down; the hub
   comes back and the store's push loop sends them (signed batches of 500, over HTTP,
   to the real `kiosk hub serve`). Goal (issue 15): <= 1 s. The floor, measured in the
   same run, is the hub's raw insert rate for the same rows: the same 10,000
   transaction records inserted straight into an SQLite table shaped like the hub's,
   in batches of 500, each batch one BEGIN IMMEDIATE ... COMMIT with WAL and
   synchronous=FULL, as the hub commits. Ratio = drain rate / raw insert rate (goal
   >= 0.1). KIOSK_BENCH_DRAIN_ROUNDS (3) drains, each followed by its floor (the first
   queued while the hub is down, the others with it up but not sent to); the medians
   are judged: one busy moment of a shared machine does not decide.
   Queuing: 1,000 / 10,000 / 50,000 stock adjustments queued locally (one commit for
   the burst, rolled back after), against the floor of the same number of bare
   two-row inserts (movement + outbox) in the same run; goal: linear (the time per
   adjustment at 50,000 within 1.5x of that at 1,000). KIOSK_BENCH_QUEUE=1000,10000
   sets the sizes.
2. Hub -> store latency: a change made at the hub (another store's stock movement) is
   timed until it is in this store's database, applied by the worker of a running
   `kiosk serve` (long-polling). Goal: p95 <= 2 s.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core import db as dbmod  # noqa: E402
from app.demo import seed as seedmod  # noqa: E402
from app.demo.hub_seed import seed_hub  # noqa: E402
from app.hub.storage import open_db  # noqa: E402
from app.store.domain import stock  # noqa: E402
from app.store.migrations import migrate  # noqa: E402
from app.store.sync.client import HubClient  # noqa: E402
from app.store.sync.pull import pull_once  # noqa: E402
from app.store.sync.push import push_once  # noqa: E402

N = int(os.environ.get("KIOSK_BENCH_TRANSACTIONS", "10000"))
QUEUE_SIZES = [
    int(n) for n in os.environ.get("KIOSK_BENCH_QUEUE", "1000,10000,50000").split(",") if n
]
DRAIN_GOAL_S, RATIO_GOAL, LINEAR_GOAL = 1.0, 0.1, 1.5
#: Drains of N, each with its floor right after; the medians are judged.
DRAIN_ROUNDS = int(os.environ.get("KIOSK_BENCH_DRAIN_ROUNDS", "3"))


class _Undo(Exception):
    pass


def queue_seconds(db, skus: list[str], n: int) -> tuple[float, float]:
    """(seconds to queue n adjustments, seconds for n bare movement + outbox inserts),
    each in one transaction rolled back after: the database is left as it was."""
    times = []
    for bare in (False, True):
        try:
            with dbmod.write(db):
                started = time.perf_counter()
                if bare:
                    db.conn.executemany(
                        "INSERT INTO stock_movements (id, sku, delta, kind, created_at) "
                        "VALUES (?, ?, ?, 'adjusted', '2026-11-22T00:00:00Z')",
                        [(f"bare-{i}", skus[i % len(skus)], 1) for i in range(n)],
                    )
                    db.conn.executemany(
                        "INSERT INTO outbox (id, type, occurred_at, payload, created_at) "
                        "VALUES (?, 'stock.movement', '2026-11-22T00:00:00Z', '{}', "
                        "'2026-11-22T00:00:00Z')",
                        [(f"bare-{i}",) for i in range(n)],
                    )
                else:
                    for i in range(n):
                        stock.adjust(db, skus[i % len(skus)], (-1, 1)[i % 2], reason="bench")
                times.append(time.perf_counter() - started)
                raise _Undo
        except _Undo:
            pass
    return times[0], times[1]


LYON, PARIS = seedmod.DEMO_STORES[0]["id"], seedmod.DEMO_STORES[1]["id"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], url: str, env: dict | None = None) -> subprocess.Popen:
    import requests

    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.05)
    raise SystemExit(f"{cmd[3:5]} did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=10)


def _raw_rows(sku: str) -> list[tuple]:
    body = json.dumps({"sku": sku, "delta": -1, "kind": "adjusted"})
    return [
        (
            str(uuid.uuid4()),
            LYON,
            "stock.movement",
            hashlib.sha256(body.encode()).hexdigest(),
            "accepted",
            None,
            json.dumps({"sku": sku, "qty": 1, "seq": i}),
            "2026-11-22T00:00:00Z",
        )
        for i in range(N)
    ]


def raw_insert_seconds(path: Path, rows: list[tuple]) -> float:
    """The floor: the same rows straight into SQLite, committed like the hub does."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        """CREATE TABLE transactions (id TEXT PRIMARY KEY, store_id TEXT, type TEXT,
           body_hash TEXT, status TEXT, reason TEXT, result TEXT, received_at TEXT)"""
    )
    started = time.perf_counter()
    for i in range(0, len(rows), 500):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows[i : i + 500]
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kiosk-bench-sync-"))
    hub_dir, store_dir = tmp / "hub", tmp / "store"
    hub_db = open_db(hub_dir)
    secrets = {s["id"]: s["secret"] for s in seed_hub(hub_db, products=200)["stores"]}
    hub_db.close()
    port = free_port()
    hub_url = f"http://127.0.0.1:{port}"
    hub_cmd = [
        sys.executable,
        "-m",
        "app",
        "hub",
        "serve",
        "--data",
        str(hub_dir),
        "--port",
        str(port),
    ]

    # A store that did its first sync, then lost the link.
    hub = start(hub_cmd, hub_url + "/api/v1/status")
    db = dbmod.connect(dbmod.db_path(store_dir))
    migrate(db)
    client = HubClient(hub_url, LYON, secrets[LYON])
    first = time.perf_counter()
    pull_once(db, client, own_store_id=LYON)
    first_sync_s = time.perf_counter() - first
    stop(hub)

    skus = [r[0] for r in db.execute("SELECT sku FROM variants ORDER BY sku LIMIT 200")]
    queuing = {n: queue_seconds(db, skus, n) for n in QUEUE_SIZES}

    # Each round: N movements queued (the first round while the hub is down), drained,
    # then the floor measured right after, so a busy moment weighs on both.
    rounds: list[tuple[float, float]] = []  # (drain seconds, floor seconds)
    all_ids: list[str] = []
    hub = None
    for r in range(DRAIN_ROUNDS):
        started = time.perf_counter()
        with dbmod.write(db):  # one commit for the burst: queuing speed is not measured here
            for i in range(N):
                stock.adjust(db, skus[i % len(skus)], (-1, 1)[i % 2], reason="bench")
        if r == 0:
            queue_s = time.perf_counter() - started
        ids = [r[0] for r in db.execute("SELECT id FROM outbox WHERE acked_at IS NULL")]
        assert len(ids) == N
        all_ids += ids
        if hub is None:
            hub = start(hub_cmd, hub_url + "/api/v1/status")
        started = time.perf_counter()
        while db.execute("SELECT count(*) FROM outbox WHERE acked_at IS NULL").fetchone()[0]:
            push_once(db, client)
        drain_s = time.perf_counter() - started
        rounds.append((drain_s, raw_insert_seconds(tmp / f"raw-{r}.db", _raw_rows(skus[0]))))
    check = sqlite3.connect(hub_dir / "hub.db")
    marks = ",".join("?" * 500)
    at_hub = sum(
        check.execute(
            f"SELECT count(*) FROM transactions WHERE id IN ({marks})",  # noqa: S608
            all_ids[i : i + 500],
        ).fetchone()[0]
        for i in range(0, len(all_ids), 500)
    )
    check.close()
    drain_s = statistics.median(d for d, _ in rounds)
    raw_s = statistics.median(f for _, f in rounds)
    ratio = statistics.median(f / d for d, f in rounds)  # drain rate / raw rate, per round

    # Hub -> store latency through a running store server's worker.
    store_port = free_port()
    store_url = f"http://127.0.0.1:{store_port}"
    store = start(
        [
            sys.executable,
            "-m",
            "app",
            "serve",
            "--data",
            str(store_dir),
            "--port",
            str(store_port),
            "--hub-url",
            hub_url,
            "--store-id",
            LYON,
        ],
        store_url + "/healthz",
        env={"KIOSK_STORE_SECRET": secrets[LYON]},
    )
    time.sleep(1.5)  # let its worker settle into a long-poll
    paris = HubClient(hub_url, PARIS, secrets[PARIS])
    latencies = []
    for i in range(40):
        sku = skus[i % len(skus)]
        t0 = time.perf_counter()
        [res] = paris.post_transactions(
            [
                {
                    "id": str(uuid.uuid4()),
                    "type": "stock.movement",
                    "occurred_at": "2026-11-22T00:00:00Z",
                    "payload": {"sku": sku, "delta": 1, "kind": "adjusted"},
                }
            ]
        )
        seq = res["result"]["seq"]
        while True:
            row = db.execute(
                "SELECT seq FROM stock_levels WHERE store_id = ? AND sku = ?", [PARIS, sku]
            ).fetchone()
            if row and row[0] >= seq:
                break
            if time.perf_counter() - t0 > 30:
                raise SystemExit("a hub change did not reach the store in 30 s")
            time.sleep(0.005)
        latencies.append(time.perf_counter() - t0)
        time.sleep(0.1)
    stop(store)
    stop(hub)

    drain_rate, raw_rate = N / drain_s, N / raw_s
    p95 = sorted(latencies)[int(0.95 * (len(latencies) - 1))]
    print()
    print(f"sync: {N:,} transactions queued offline, {os.cpu_count()} CPUs")
    print(f"  first sync of 200 products (in-process pull): {first_sync_s:.2f} s")
    print(f"  queued locally in {queue_s:.2f} s (one commit)")
    print(
        f"  {'queued locally (one commit)':<30}{'seconds':>9}{'µs each':>9}"
        f"{'floor s':>9}{'x floor':>9}"
    )
    for n, (q_s, bare_s) in queuing.items():
        print(
            f"  {f'{n:,} adjustments':<30}{q_s:>9.2f}{q_s / n * 1e6:>9.0f}{bare_s:>9.3f}"
            f"{q_s / bare_s:>8.1f}x"
        )
    print(
        f"  drained to the hub in {drain_s:.2f} s = {drain_rate:,.0f}/s "
        f"(goal <= {DRAIN_GOAL_S:g} s; median of {len(rounds)} rounds); "
        f"{at_hub:,} of {len(all_ids):,} at the hub"
    )
    print(f"  raw SQLite insert of the same rows (floor): {raw_s:.3f} s = {raw_rate:,.0f}/s")
    print(f"  drain rate / raw insert rate: {ratio:.3f} (goal >= {RATIO_GOAL:g})")
    print(
        "  rounds (drain s / floor s = ratio): "
        + ", ".join(f"{d:.2f} / {f:.3f} = {f / d:.3f}" for d, f in rounds)
    )
    print(
        f"  hub -> store change applied: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms (goal <= 2000 ms)"
    )
    small, big = min(queuing), max(queuing)
    per_small, per_big = queuing[small][0] / small, queuing[big][0] / big
    for goal, ok in {
        f"drain <= {DRAIN_GOAL_S:g} s": drain_s <= DRAIN_GOAL_S,
        "every transaction at the hub once": at_hub == len(all_ids),
        f"drain/raw >= {RATIO_GOAL:g}": ratio >= RATIO_GOAL,
        f"queuing linear ({big:,} within {LINEAR_GOAL:g}x of {small:,} per adjustment, "
        f"now {per_big / per_small:.2f}x)": per_big <= LINEAR_GOAL * per_small,
        "hub->store p95 <= 2 s": p95 <= 2,
    }.items():
        print(f"  {'met ' if ok else 'MISS'}  {goal}")


if __name__ == "__main__":
    main()
