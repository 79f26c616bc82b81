"""Issue 15's memory budget: all store processes together <= 250 MB RSS (the sum of VmRSS
of gunicorn's arbiter, its web workers and the kiosk worker, as benchmarks/run.py sums it:
a page shared copy-on-write counts once per process).

The budget is stated at 100,000 products: benchmarks/run.py and
benchmarks/store_processes.py measure it there (seeding that store takes minutes). This
test holds the same sum on the test store after a busy spell from 8 clients: most of the
budget is the code every process loads and what each request thread keeps (its SQLite
connection, page cache and prepared statements, the caches), the same at any catalogue
size; a new import in every process or a cache without a bound fails it."""

from __future__ import annotations

import random
import sqlite3
import threading
from pathlib import Path
from urllib.parse import quote

import requests

from app.core import db as dbmod

from .test_store_workers import CLOSE, _ready, _wait_for

BUDGET_MB = 250


def _tree_rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` and its children, summed (benchmarks/run.py's rss_mb)."""
    pids = [pid]
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(entry.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    kb = 0
    for one in pids:
        try:
            status = Path(f"/proc/{one}/status").read_text()
        except OSError:
            continue
        kb += int(next(ln for ln in status.splitlines() if ln.startswith("VmRSS:")).split()[1])
    return kb / 1024


def test_all_store_processes_stay_within_the_memory_budget(server_factory, store_data):
    db = sqlite3.connect(dbmod.db_path(store_data))
    refs = [r[0] for r in db.execute("SELECT ref FROM products")]
    names = [r[0] for r in db.execute("SELECT name_fr FROM products")]
    db.close()
    rng = random.Random(15)
    paths = []
    for _ in range(8 * 40):  # searches never repeated, product pages: every cache fills
        if rng.randrange(3) == 0:
            paths.append(f"/product/{rng.choice(refs)}")
        else:
            word = max(rng.choice(names).split(), key=len)
            paths.append(f"/search?q={quote(word[: rng.randint(2, max(2, len(word)))])}")
    server = server_factory(store_data, env={"KIOSK_WORKERS": "2"})
    _wait_for("2 web workers", lambda: _ready(server.proc.pid, 2))
    failures: list[str] = []

    def client(mine: list[str]) -> None:
        for path in mine:
            resp = requests.get(server.url + path, headers=CLOSE, timeout=30)
            if resp.status_code != 200:
                failures.append(f"{path}: {resp.status_code}")

    threads = [threading.Thread(target=client, args=(paths[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:5]
    total = _tree_rss_mb(server.proc.pid)
    print(f"all store processes after {len(paths)} requests: {total:.0f} MB RSS")
    assert total <= BUDGET_MB, f"{total:.0f} MB RSS > {BUDGET_MB} MB"
