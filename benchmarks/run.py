"""Kiosk benchmarks: `make bench`.

Seeds (once, cached in .bench/) a store with 100,000 products, starts the real
`kiosk serve` (gunicorn: a web worker per core, 8 threads in all), and drives it with 8
concurrent keep-alive clients from a separate process. Every figure is printed next to
a floor measured in the same run on the same server — a bare Flask route (`/_ping`) —
because this machine is shared and noisy: ratios and medians travel, absolute numbers do not.

Reported:
- time from `kiosk serve` start to the first kiosk screen (goal <= 2 s)
- search fragment (htmx partial) p50/p95, client-observed and server time
  (Server-Timing), goal p95 <= 15 ms and <= 3x the floor: "search fragment" replays
  17 common fragments as shoppers type them (the fragment cache answers most);
  "search, cold" sends queries never seen before in the run (no cache help), goal p95
  <= 30 ms
- product page p50/p95, goal p95 <= 25 ms and <= 3x the floor
- RSS of all store processes after the run (gunicorn's arbiter, its web workers and the
  kiosk worker: goal <= 250 MB; benchmarks/store_processes.py splits it per process)
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAGMENTS = [
    "ch",
    "chau",
    "chaussure",
    "velo",
    "vél",
    "tente",
    "veste imp",
    "sac",
    "ballon",
    "running",
    "raquette",
    "gourde",
    "maillot",
    "ski",
    "bask",
    "trail",
    "route",
]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_seeded(data: Path, products: int) -> None:
    db_file = data / "kiosk.db"
    if db_file.exists():
        n = sqlite3.connect(db_file).execute("SELECT count(*) FROM products").fetchone()[0]
        if n == products:
            return
        raise SystemExit(f"{data} holds {n} products, not {products}: remove it first")
    print(f"seeding {products} products into {data} (once; cached for later runs)…", flush=True)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "app", "seed", "--data", str(data), "--products", str(products)],
        check=True,
        cwd=ROOT,
    )
    print(f"  seeded in {time.perf_counter() - t0:.1f} s", flush=True)


def start_server(data: Path, port: int) -> tuple[subprocess.Popen, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "serve",
            "--data",
            str(data),
            "--port",
            str(port),
            "--threads",
            "8",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/")
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                return proc, time.perf_counter() - t0
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit("server exited")
        if time.perf_counter() - t0 > 30:
            raise SystemExit("server not ready in 30 s")
        time.sleep(0.01)


def _worker(port: int, paths: list[tuple[str, dict]], out: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for path, headers in paths:
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        elapsed = time.perf_counter() - t0
        if resp.status != 200:
            raise RuntimeError(f"{path}: {resp.status}")
        timing = resp.getheader("Server-Timing", "")
        server_ms = float(timing.split("dur=")[1]) if "dur=" in timing else float("nan")
        out.append((elapsed * 1000, server_ms))


def load(port: int, make_paths, clients: int, per_client: int, queue) -> None:
    """Run in a separate process: `clients` threads, each with its own connection."""
    results: list = []
    threads = [
        threading.Thread(target=_worker, args=(port, make_paths(i, per_client), results))
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put(results)


def run_load(port: int, make_paths, clients: int, per_client: int) -> list:
    q = mp.get_context("fork").Queue()
    p = mp.get_context("fork").Process(target=load, args=(port, make_paths, clients, per_client, q))
    p.start()
    results = q.get()
    p.join()
    return results


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def rss_mb(pid: int) -> tuple[float, float]:
    """RSS and peak RSS of ``pid`` and its children together (``kiosk serve`` is several
    processes: issue 15), in MB."""
    pids = [pid]
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(entry.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    rss = hwm = 0
    for one in pids:
        try:
            status = Path(f"/proc/{one}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss += int(fields["VmRSS"].split()[0])
        hwm += int(fields["VmHWM"].split()[0])
    return rss / 1024, hwm / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=150, help="per client per endpoint")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args()

    data = args.data or ROOT / ".bench" / f"store-{args.products}"
    ensure_seeded(data, args.products)
    db = sqlite3.connect(data / "kiosk.db")
    refs = [r[0] for r in db.execute("SELECT ref FROM products ORDER BY random() LIMIT 2000")]
    # Cold searches: two word prefixes from one real product name, each query used
    # once in the whole run, so the fragment cache never helps them.
    rng = random.Random(7)
    cold: list[str] = []
    seen: set[str] = set()
    for (name,) in db.execute("SELECT name_fr FROM products ORDER BY random() LIMIT 20000"):
        words = [w for w in name.split() if len(w) >= 3]
        if len(words) < 2:
            continue
        w1, w2 = rng.sample(words, 2)
        q = f"{w1[: rng.randint(3, len(w1))]} {w2[: rng.randint(2, len(w2))]}"
        if q not in seen:
            seen.add(q)
            cold.append(q)

    # Raw SQLite floor: the FTS query alone, in-process, no HTTP, no templates.
    raw = []
    for frag in FRAGMENTS * 5:
        words = " AND ".join(f'"{w}"*' for w in frag.replace("é", "e").split())
        t0 = time.perf_counter()
        db.execute(
            "SELECT rowid FROM products_fts WHERE products_fts MATCH ? ORDER BY rank LIMIT 24",
            [words],
        ).fetchall()
        raw.append((time.perf_counter() - t0) * 1000)
    db.close()

    port = free_port()
    proc, startup_s = start_server(data, port)
    try:
        hx = {"HX-Request": "true"}

        def ping_paths(i, n):
            return [("/_ping", {})] * n

        def search_paths(i, n):
            rng = random.Random(i)
            from urllib.parse import quote

            return [(f"/search?q={quote(rng.choice(FRAGMENTS))}", hx) for _ in range(n)]

        def cold_search_paths(i, n):
            from urllib.parse import quote

            mine = cold[i * n : (i + 1) * n]
            if len(mine) < n:
                raise SystemExit("not enough distinct cold queries")
            return [(f"/search?q={quote(q)}", hx) for q in mine]

        def product_paths(i, n):
            rng = random.Random(100 + i)
            return [(f"/product/{rng.choice(refs)}", {}) for _ in range(n)]

        # Warm up (page cache, template compilation) before measuring anything.
        run_load(port, search_paths, args.clients, 20)
        run_load(port, product_paths, args.clients, 20)

        # The same table with 1 client (what a lone shopper feels) and with --clients;
        # the 1-client pass uses client numbers after theirs (its own cold queries).
        tables: dict[int, dict] = {}
        for clients, shift in {1: args.clients, args.clients: 0}.items():
            rows = tables[clients] = {}
            for name, fn in (
                ("floor /_ping", ping_paths),
                ("search fragment", search_paths),
                ("search, cold", cold_search_paths),
                ("product page", product_paths),
                ("floor /_ping again", ping_paths),
            ):
                paths = (lambda f, k: lambda i, n: f(i + k, n))(fn, shift)
                res = run_load(port, paths, clients, args.requests)
                client = [c for c, _ in res]
                server = [s for _, s in res]
                rows[name] = {
                    "n": len(res),
                    "p50_ms": statistics.median(client),
                    "p95_ms": pct(client, 95),
                    "server_p50_ms": statistics.median(server),
                    "server_p95_ms": pct(server, 95),
                }
        rows = tables[args.clients]
        rss, hwm = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    print()
    print(
        f"raw SQLite FTS query (in-process): median {statistics.median(raw):.2f} ms, "
        f"p95 {pct(raw, 95):.2f} ms"
    )
    for clients, table in tables.items():
        floor = table["floor /_ping"]
        print(
            f"store with {args.products:,} products, {clients} concurrent "
            f"client{'s' if clients > 1 else ''}, {os.cpu_count()} CPUs"
        )
        print(
            f"{'endpoint':<20}{'p50 ms':>9}{'p95 ms':>9}{'srv p50':>9}{'srv p95':>9}"
            f"{'p95/floor':>11}{'p50/floor':>11}"
        )
        for name, r in table.items():
            print(
                f"{name:<20}{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}{r['server_p50_ms']:>9.2f}"
                f"{r['server_p95_ms']:>9.2f}{r['p95_ms'] / floor['p95_ms']:>10.2f}x"
                f"{r['p50_ms'] / floor['p50_ms']:>10.2f}x"
            )
    floor = rows["floor /_ping"]
    print(f"first kiosk screen after `kiosk serve` start: {startup_s:.2f} s (goal <= 2 s)")
    print(
        f"all store processes' RSS after the run: {rss:.0f} MB (peaks {hwm:.0f} MB, goal <= 250 MB)"
    )

    def latency_goals(rows: dict) -> dict[str, bool]:
        floor = rows["floor /_ping"]
        return {
            "search p95 <= 15 ms": rows["search fragment"]["p95_ms"] <= 15,
            "product p95 <= 25 ms": rows["product page"]["p95_ms"] <= 25,
            "search p95 <= 3x floor": rows["search fragment"]["p95_ms"] <= 3 * floor["p95_ms"],
            "cold search p95 <= 30 ms": rows["search, cold"]["p95_ms"] <= 30,
            "product p95 <= 3x floor": rows["product page"]["p95_ms"] <= 3 * floor["p95_ms"],
        }

    goals = {
        **latency_goals(rows),
        "first screen <= 2 s": startup_s <= 2,
        "RSS of all store processes <= 250 MB": rss <= 250,
    }
    # The same latency goals for a lone shopper (the 1-client table).
    goals_1_client = latency_goals(tables[1])
    for goal, ok in goals.items():
        print(f"  {'met ' if ok else 'MISS'}  {goal}")
    for goal, ok in goals_1_client.items():
        print(f"  {'met ' if ok else 'MISS'}  {goal} (1 client)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": rows,
                    "rows_1_client": tables[1],
                    "startup_s": startup_s,
                    "rss_mb": rss,
                    "peak_rss_mb": hwm,
                    "goals": goals,
                    "goals_1_client": goals_1_client,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
