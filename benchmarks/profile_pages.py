"""Profile the store's busy pages in-process (cProfile), one client, no HTTP server.

Uses the stores the benchmarks seed in .bench/ (benchmarks/run.py: 100,000 products;
benchmarks/orders.py: 10,000 open orders; benchmarks/carts.py: 20-line cart QR codes),
seeding them once if missing, and drives each page through Flask's test client:

- search fragment (htmx, a few repeated queries), search with never-repeated queries,
  product page;
- counter: scan -> order page, the "to prepare" list;
- a 20-line cart scan -> the cart on screen.

Prints, per page, the time per request and the top functions by own time and by
cumulative time; ``--out FILE`` writes the same as Markdown.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import carts as carts_bench  # noqa: E402
from benchmarks import orders as orders_bench  # noqa: E402
from benchmarks.run import FRAGMENTS, ensure_seeded  # noqa: E402

# Cumulative time is shown for these frames only (the test client's wrappers say nothing).
ONLY = ""
TIMES_ONLY = False
OWN_FRAMES = (
    r"(/app/|/templates/|flask_babel/__init__.py|helpers.py:\d+\(url_for\)|render_template)"
)


def _app(data: Path):
    from app.core import db as dbmod
    from app.store.app import create_app
    from app.store.migrations import migrate

    db = dbmod.connect(dbmod.db_path(data))
    migrate(db)  # as `kiosk serve` does at start: a seed older than the code catches up
    db.close()
    return create_app({"DATA_DIR": str(data)})


def _staff_client(app, data: Path):
    from app.core import db as dbmod

    db = dbmod.connect(dbmod.db_path(data))
    staff_id = db.execute("SELECT id FROM staff WHERE name = 'Bench'").fetchone()[0]
    db.close()
    client = app.test_client()
    page = client.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post(
        "/staff/login", data={"staff_id": staff_id, "pin": orders_bench.PIN, "csrf_token": token}
    )
    assert r.status_code == 302, r.status_code
    return client


def _profile(name: str, n: int, step: Callable[[int], None], top: int) -> str:
    if ONLY and ONLY not in name:
        return ""
    for i in range(min(10, n)):  # warm: templates compiled, page cache
        step(-1 - i)
    if TIMES_ONLY:  # no profiler: each request timed alone, median and p95
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            step(i)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        return f"{name}: median {times[len(times) // 2]:.2f} ms, p95 {p95:.2f} ms ({n} requests)"
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for i in range(n):
        step(i)
    prof.disable()
    per = (time.perf_counter() - t0) * 1000 / n
    out = [f"## {name}: {per:.2f} ms per request (profiled, {n} requests)", ""]
    for key, label in (("tottime", "own time"), ("cumulative", "cumulative")):
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        if key == "cumulative":  # the project's own frames and what they call into
            stats.sort_stats(key).print_stats(OWN_FRAMES, top)
        else:
            stats.sort_stats(key).print_stats(top)
        lines = [
            ln.replace(str(ROOT) + "/", "")
            for ln in buf.getvalue().splitlines()
            if ln.strip() and not ln.lstrip().startswith(("Ordered by", "List reduced"))
        ]
        start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
        out += [f"top {top} by {label}:", "```", *lines[start:], "```", ""]
    return "\n".join(out)


def pages(n: int, top: int) -> Iterator[str]:
    store = ROOT / ".bench" / "store-100000"
    ensure_seeded(store, 100_000)
    db = sqlite3.connect(store / "kiosk.db")
    refs = [r[0] for r in db.execute("SELECT ref FROM products ORDER BY random() LIMIT 500")]
    names = [r[0] for r in db.execute("SELECT name_fr FROM products ORDER BY random() LIMIT 5000")]
    db.close()
    rng = random.Random(7)
    cold = []
    for name in names:
        words = [w for w in name.split() if len(w) >= 3]
        if len(words) >= 2:
            w1, w2 = rng.sample(words, 2)
            cold.append(f"{w1[: rng.randint(3, len(w1))]} {w2[: rng.randint(2, len(w2))]}")
    cold = list(dict.fromkeys(cold))
    client = _app(store).test_client()
    hx = {"HX-Request": "true"}

    def get(path: str, **kw) -> None:
        r = client.get(path, **kw)
        assert r.status_code == 200, (path, r.status_code)

    yield _profile(
        "search fragment",
        n,
        lambda i: get(f"/search?q={quote(FRAGMENTS[i % len(FRAGMENTS)])}", headers=hx),
        top,
    )
    yield _profile(
        "search, never-repeated query",
        n,
        lambda i: get(f"/search?q={quote(cold[i % len(cold)])}", headers=hx),
        top,
    )
    yield _profile("product page", n, lambda i: get(f"/product/{refs[i % len(refs)]}"), top)

    from app.core import tokens
    from app.demo.seed import DEMO_STORES

    data = ROOT / ".bench" / f"orders-{orders_bench.ORDERS}"
    orders_bench.seed(data)
    staff = _staff_client(_app(data), data)
    key = tokens.load_private_key((data / "hub_key.pem").read_bytes())
    codes = []
    for k in range(0, orders_bench.ORDERS, 37):
        if k % 2:
            codes.append(f"CC-{10_000_000 + k}")
        else:
            payload = {"o": f"o-{k:016d}", "s": DEMO_STORES[0]["id"]}
            codes.append(quote(tokens.mint(key, "pickup", payload, 86400, kid="k1")))

    def scan(i: int) -> None:
        r = staff.get(f"/staff/orders/scan?code={codes[i % len(codes)]}", follow_redirects=True)
        assert r.status_code == 200, r.status_code

    def to_prepare(i: int) -> None:
        assert staff.get("/staff/orders?view=to_prepare").status_code == 200

    yield _profile("counter: scan -> order page", n, scan, top)
    yield _profile('counter: "to prepare" list', n, to_prepare, top)

    cdata = ROOT / ".bench" / f"carts-{carts_bench.PRODUCTS}"
    carts_bench.seed(cdata)
    cart_tokens = carts_bench.cart_tokens(cdata, n + 10, random.Random(5))
    kiosk_app = _app(cdata)

    def cart(i: int) -> None:
        # A new shopper each time (no cookie), as benchmarks/carts.py scans: the cart
        # itself, not the "merge with the cart you have" page.
        r = kiosk_app.test_client().get(
            f"/scan?code={quote(cart_tokens[i])}", follow_redirects=True
        )
        assert r.status_code == 200, r.status_code

    yield _profile("20-line cart scan -> cart on screen", n, cart, top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--times", action="store_true", help="time requests, no profile")
    parser.add_argument("--only", default="", help="profile the pages whose name has this")
    args = parser.parse_args()
    global ONLY, TIMES_ONLY
    ONLY, TIMES_ONLY = args.only, args.times
    parts = []
    for part in filter(None, pages(args.requests, args.top)):
        print(part, flush=True)
        parts.append(part)
    if args.out:
        args.out.write_text(
            "# Store pages, profiled (benchmarks/profile_pages.py)\n\n" + "\n".join(parts)
        )


if __name__ == "__main__":
    main()
