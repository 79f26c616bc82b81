"""Click-and-collect benchmark: a store with 10,000 open orders.

Seeds (once, cached in .bench/) a store with 2,000 products and 10,000 web orders
(applied through the change feed, as real orders arrive), starts the real `kiosk
serve` (gunicorn: a web worker per core, 8 threads in all), logs a staff member in,
and drives it with concurrent clients from another process, like benchmarks/run.py:

- scan-to-order: the staff scan endpoint resolving an order number or a pickup QR
  token (verified with the hub key) and the order page it redirects to, together;
- the "to prepare" list (first page, full page and the htmx partial);
- a bare route (`/_ping`) as the floor.

Printed for 1 client (a lone member of staff) and for 8, each row with its ratio to the
floor measured in the same run. Goals (client p95, issue 15): scan -> order page <= 25 ms,
"to prepare" list <= 40 ms.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.run import free_port, pct  # noqa: E402

ORDERS = 10_000
PIN = "246810"
#: Client-side p95 goals (issue 15: "every tap under 50 ms on a busy Saturday").
GOALS_MS = {"scan -> order page": 25, "to prepare list": 40}


def seed(data: Path) -> None:
    from app.core import clock, tokens
    from app.core import db as dbmod
    from app.core.secrets import hash_secret
    from app.demo.seed import DEMO_STORES, seed_store
    from app.store.domain.staff import add_staff
    from app.store.domain.stock import self_store_id
    from app.store.migrations import migrate
    from app.store.sync import feed

    if (data / "ready").exists():
        return
    print(f"seeding a store with {ORDERS:,} orders into {data} (once)…", flush=True)
    db = dbmod.connect(dbmod.db_path(data))
    migrate(db)
    seed_store(db, DEMO_STORES[0]["id"], products=2000)
    pem, _ = tokens.generate_keypair()
    (data / "hub_key.pem").write_bytes(pem)
    public = tokens.public_key_b64(tokens.load_private_key(pem))
    own = self_store_id(db)
    feed.apply_page(
        db,
        {
            "changes": [
                {
                    "seq": 1,
                    "kind": "hub_key",
                    "key": "k1",
                    "data": {"kid": "k1", "public_key": public},
                }
            ]
        },
        own,
    )
    variants = db.execute_returning_dicts(
        """SELECT v.sku, v.ean, p.name_fr, p.name_en, v.size, v.colour_fr, v.colour_en,
                  c.slug AS category_slug, p.price_cents FROM variants v
           JOIN products p ON p.pk = v.product_pk JOIN categories c ON c.id = p.category_id
           LIMIT 500"""
    )
    code_hash = hash_secret("123456")  # one hash for all: scrypt x 10,000 would take minutes
    now = clock.utcnow().timestamp()
    changes = []
    for i in range(ORDERS):
        placed = clock.iso(clock.utcnow().fromtimestamp(now - 60 * (ORDERS - i), clock.UTC))
        status = ("placed", "preparing", "ready")[i % 3]
        lines = []
        for n in range(1 + i % 3):
            v = variants[(i * 7 + n) % len(variants)]
            lines.append(
                {
                    "line": n + 1,
                    **v,
                    "qty": 1,
                    "qty_ready": int(status == "ready"),
                    "qty_collected": 0,
                    "qty_returned": 0,
                }
            )
        changes.append(
            {
                "seq": i,
                "kind": "order",
                "key": f"o-{i:016d}",
                "data": {
                    "id": f"o-{i:016d}",
                    "number": f"CC-{10_000_000 + i}",
                    "store_id": own,
                    "status": status,
                    "customer_name": f"Client {secrets.token_hex(3)} Nom{i}",
                    "customer_email": f"c{i}@example.org",
                    "customer_initials": "C. N.",
                    "placed_at": placed,
                    "promised_at": placed,
                    "expiry_days": 7,
                    "pickup_code_hash": code_hash,
                    "lines": lines,
                    "revision": 1,
                },
            }
        )
    for start in range(0, ORDERS, 1000):
        feed.apply_page(db, {"changes": changes[start : start + 1000]}, own)
    add_staff(db, "Bench", "staff", PIN)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    (data / "ready").write_text("ok")


def start(data: Path, port: int) -> subprocess.Popen:
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
    for _ in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/_ping")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server not ready")


def login(port: int, data: Path) -> str:
    import requests

    from app.core import db as dbmod

    db = dbmod.connect(dbmod.db_path(data))
    staff_id = db.execute("SELECT id FROM staff WHERE name = 'Bench'").fetchone()[0]
    db.close()
    s = requests.Session()
    page = s.get(f"http://127.0.0.1:{port}/staff/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(
        f"http://127.0.0.1:{port}/staff/login",
        data={"staff_id": staff_id, "pin": PIN, "csrf_token": token},
        allow_redirects=False,
    )
    assert r.status_code == 302, r.status_code
    return "; ".join(f"{k}={v}" for k, v in s.cookies.items())


def _timing(resp: http.client.HTTPResponse) -> float:
    t = resp.getheader("Server-Timing", "")
    return float(t.split("dur=")[1]) if "dur=" in t else float("nan")


def _worker(port: int, paths: list[str], headers: dict, follow: bool, out: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for path in paths:
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        server = _timing(resp)
        if follow and resp.status == 302:
            conn.request("GET", resp.getheader("Location"), headers=headers)
            resp = conn.getresponse()
            resp.read()
            server += _timing(resp)
        if resp.status != 200:
            raise RuntimeError(f"{path}: {resp.status}")
        out.append(((time.perf_counter() - t0) * 1000, server))


def _load(port, per_client, headers, follow, q) -> None:
    results: list = []
    threads = [
        threading.Thread(target=_worker, args=(port, p, headers, follow, results))
        for p in per_client
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    q.put(results)


def run(port, per_client, headers, follow=False) -> dict:
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_load, args=(port, per_client, headers, follow, q))
    p.start()
    res = q.get()
    p.join()
    client = [c for c, _ in res]
    server = [s for _, s in res]
    return {
        "n": len(res),
        "p50": statistics.median(client),
        "p95": pct(client, 95),
        "srv_p50": statistics.median(server),
        "srv_p95": pct(server, 95),
    }


def main() -> None:
    from app.core import tokens
    from app.demo.seed import DEMO_STORES

    clients, n = 8, 150
    data = ROOT / ".bench" / f"orders-{ORDERS}"
    seed(data)
    key = tokens.load_private_key((data / "hub_key.pem").read_bytes())
    store_id = DEMO_STORES[0]["id"]
    port = free_port()
    proc = start(data, port)
    try:
        headers = {"Cookie": login(port, data)}
        rng = __import__("random").Random(3)

        def scans(i):
            out = []
            for _ in range(n):
                k = rng.randrange(ORDERS)
                if rng.random() < 0.5:
                    out.append(f"/staff/orders/scan?code=CC-{10_000_000 + k}")
                else:
                    tok = tokens.mint(
                        key, "pickup", {"o": f"o-{k:016d}", "s": store_id}, 86400, kid="k1"
                    )
                    out.append(f"/staff/orders/scan?code={quote(tok)}")
            return out

        def table(k: int) -> dict:
            lists = [["/staff/orders?view=to_prepare"] * n for _ in range(k)]
            pings = [["/_ping"] * n for _ in range(k)]
            return {
                "floor /_ping": run(port, pings, headers),
                "scan -> order page": run(port, [scans(i) for i in range(k)], headers, True),
                "to prepare list": run(port, lists, headers),
                "to prepare (htmx)": run(
                    port, lists, {**headers, "HX-Request": "true", "HX-Target": "order-list"}
                ),
                "floor /_ping again": run(port, pings, headers),
            }

        run(port, [["/staff/orders?view=to_prepare"] * 20 for _ in range(clients)], headers)
        # What a lone member of staff feels, then the Saturday: --clients at once.
        tables = {1: table(1), clients: table(clients)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    for k, rows in tables.items():
        floor = rows["floor /_ping"]
        print(
            f"\nstore with {ORDERS:,} orders, {k} concurrent client{'s' if k > 1 else ''}, "
            f"{os.cpu_count()} CPUs"
        )
        print(
            f"{'endpoint':<22}{'p50 ms':>9}{'p95 ms':>9}{'srv p50':>9}{'srv p95':>9}"
            f"{'p95/floor':>11}"
        )
        for name, r in rows.items():
            print(
                f"{name:<22}{r['p50']:>9.2f}{r['p95']:>9.2f}{r['srv_p50']:>9.2f}"
                f"{r['srv_p95']:>9.2f}{r['p95'] / floor['p95']:>10.2f}x"
            )
        for name, goal in GOALS_MS.items():
            p95 = rows[name]["p95"]
            print(f"  {'met ' if p95 <= goal else 'MISS'}  {name} p95 {p95:.1f} ms <= {goal} ms")


if __name__ == "__main__":
    main()
