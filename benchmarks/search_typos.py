"""Typo search benchmark: `make bench` (beside benchmarks/run.py's search figures).

The same store as benchmarks/run.py: 100,000 products seeded once into .bench/ (its
builder, :func:`benchmarks.run.ensure_seeded`), migrated to the current schema (the
typo vocabulary, m011), then:

1. In this process, no HTTP: ``search_forgiving`` (app/core/search.py) on queries as
   shoppers type them, each used once: "exact" (two word prefixes of a real product
   name: what search did before, and still does first) and "typo" (the same with one
   slip in the first word: a letter dropped, doubled, swapped with its neighbour or
   replaced by one beside it on the keyboard, chosen so that nothing matches as typed:
   the corrected search runs). The floor is a plain indexed SELECT (a product by its
   ref) in the same run. Also reported: how often the typo's suggestion is the word
   that was meant.
2. Over HTTP on the real `kiosk serve` (waitress, 8 threads), 8 concurrent keep-alive
   clients asking for the search fragment (htmx partial) of those queries, never the
   same twice (the fragment cache cannot help); the floor is the bare route ``/_ping``
   under the same load (benchmarks/run.py's).

Goals, against the exact search measured in the same run (this machine is shared and
noisy: ratios travel, absolute numbers do not): typo p50 <= 3x exact p50 in process,
typo fragment p95 <= 2x exact fragment p95 over HTTP.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core import db as dbmod  # noqa: E402
from app.core.search import fold, search_forgiving, search_products  # noqa: E402
from app.store.migrations import migrate  # noqa: E402
from benchmarks.run import ensure_seeded, free_port, pct, run_load, start_server  # noqa: E402

_NEIGHBOURS = dict(zip("azertyuiopqsdfghjklmwxcvbn", "zeartuyoipsqfdhgkjmlxwvcnb", strict=True))
_WORD = re.compile(r"[^\W_]+")


def slip(word: str, rng: random.Random) -> str:
    """``word`` with one typing slip."""
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("drop", "double", "swap", "neighbour"))
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + _NEIGHBOURS.get(word[i], word[i]) + word[i + 1 :]


def queries(db, n: int, seed: int = 11) -> tuple[list[str], list[tuple[str, str]]]:
    """``n`` distinct exact queries and ``n`` distinct typo queries (with the word meant)."""
    rng = random.Random(seed)
    exact: list[str] = []
    typos: list[tuple[str, str]] = []
    seen: set[str] = set()
    rows = db.execute("SELECT name_fr FROM products ORDER BY random() LIMIT ?", [n * 20])
    for (name,) in rows:
        words = [w for w in _WORD.findall(fold(name)) if len(w) >= 3 and not w.isdigit()]
        if len(words) < 2:
            continue
        w1, w2 = rng.sample(words, 2)
        tail = w2[: rng.randint(2, len(w2))]
        q = f"{w1[: rng.randint(3, len(w1))]} {tail}"
        if len(exact) < n and q not in seen:
            seen.add(q)
            exact.append(q)
        if len(typos) < n and len(w1) >= 5:
            wrong = slip(w1, rng)
            q = f"{wrong} {tail}"
            if q not in seen and not search_products(db, wrong):
                seen.add(q)
                typos.append((q, w1))
        if len(exact) >= n and len(typos) >= n:
            break
    if len(exact) < n or len(typos) < n:
        raise SystemExit("not enough distinct queries in this catalogue")
    return exact, typos


def timed(fn, items) -> tuple[list[float], list]:
    times, out = [], []
    for item in items:
        t0 = time.perf_counter()
        out.append(fn(item))
        times.append((time.perf_counter() - t0) * 1000)
    return times, out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=100, help="per client per kind")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args()

    data = args.data or ROOT / ".bench" / f"store-{args.products}"
    ensure_seeded(data, args.products)
    db = dbmod.connect(dbmod.db_path(data))
    t0 = time.perf_counter()
    applied = migrate(db)  # the vocabulary of a store seeded before it existed
    if applied:
        print(f"  migrated ({', '.join(applied)}) in {time.perf_counter() - t0:.1f} s")
    words = db.execute("SELECT count(*) FROM search_words").fetchone()[0]

    n_http = args.clients * args.requests
    exact, typos = queries(db, n_http + 400)
    local_exact, http_exact = exact[:400], exact[400:]
    local_typos, http_typos = typos[:400], typos[400:]
    refs = [r[0] for r in db.execute("SELECT ref FROM products ORDER BY random() LIMIT 400")]

    # Warm the page cache and the statements, then measure, interleaved in one run.
    for q in local_exact[:50]:
        search_forgiving(db, q)
    floor_ms, _ = timed(
        lambda ref: db.execute("SELECT pk FROM products WHERE ref = ?", [ref]).fetchone(), refs
    )
    exact_ms, exact_found = timed(lambda q: search_forgiving(db, q), local_exact)
    typo_ms, typo_found = timed(lambda qt: search_forgiving(db, qt[0]), local_typos)
    floor_again_ms, _ = timed(
        lambda ref: db.execute("SELECT pk FROM products WHERE ref = ?", [ref]).fetchone(), refs
    )
    db.close()
    suggested = sum(1 for f in typo_found if f.suggestion)
    meant = sum(
        1
        for f, (_, w) in zip(typo_found, local_typos, strict=True)
        if f.suggestion and fold(f.suggestion).split()[0] == w
    )
    exact_hits = sum(1 for f in exact_found if f.pks and f.suggestion is None)

    port = free_port()
    proc, _ = start_server(data, port)
    try:
        hx = {"HX-Request": "true"}

        def ping_paths(i, n):
            return [("/_ping", {})] * n

        def exact_paths(i, n):
            return [(f"/search?q={quote(q)}", hx) for q in http_exact[i * n : (i + 1) * n]]

        def typo_paths(i, n):
            return [(f"/search?q={quote(q)}", hx) for q, _ in http_typos[i * n : (i + 1) * n]]

        run_load(port, ping_paths, args.clients, 20)  # warm up
        rows = {}
        for name, fn in (
            ("floor /_ping", ping_paths),
            ("search, exact", exact_paths),
            ("search, typo", typo_paths),
            ("floor /_ping again", ping_paths),
        ):
            res = run_load(port, fn, args.clients, args.requests)
            client = [c for c, _ in res]
            server = [s for _, s in res]
            rows[name] = {
                "n": len(res),
                "p50_ms": statistics.median(client),
                "p95_ms": pct(client, 95),
                "server_p50_ms": statistics.median(server),
                "server_p95_ms": pct(server, 95),
            }
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    floor = statistics.median(floor_ms + floor_again_ms)
    local = {
        "floor: indexed SELECT": floor_ms + floor_again_ms,
        "search_forgiving, exact": exact_ms,
        "search_forgiving, typo": typo_ms,
    }
    print()
    print(
        f"typo search: store with {args.products:,} products ({words} vocabulary words), "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'in process':<26}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p50/floor':>11}")
    for name, values in local.items():
        p50 = statistics.median(values)
        print(f"{name:<26}{len(values):>6}{p50:>9.3f}{pct(values, 95):>9.3f}{p50 / floor:>10.1f}x")
    ratio = statistics.median(typo_ms) / statistics.median(exact_ms)
    print(f"typo p50 / exact p50: {ratio:.2f}x")
    print(
        f"exact queries answered as typed: {exact_hits}/{len(exact_found)}; typo queries "
        f"with a suggestion: {suggested}/{len(typo_found)}, the word meant: "
        f"{meant}/{len(typo_found)}"
    )
    http_floor = rows["floor /_ping"]
    print(
        f"{'over HTTP (fragment)':<26}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'srv p50':>9}"
        f"{'srv p95':>9}{'p50/floor':>11}"
    )
    for name, r in rows.items():
        print(
            f"{name:<26}{r['n']:>6}{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}"
            f"{r['server_p50_ms']:>9.2f}{r['server_p95_ms']:>9.2f}"
            f"{r['p50_ms'] / http_floor['p50_ms']:>10.2f}x"
        )
    goals = {
        "typo p50 <= 3x exact p50 (in process)": ratio <= 3,
        "typo fragment p95 <= 2x exact fragment p95 (HTTP)": rows["search, typo"]["p95_ms"]
        <= 2 * rows["search, exact"]["p95_ms"],
    }
    for goal, ok in goals.items():
        print(f"  {'met ' if ok else 'MISS'}  {goal}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "local_ms": {
                        k: {"p50": statistics.median(v), "p95": pct(v, 95)}
                        for k, v in local.items()
                    },
                    "typo_over_exact_p50": ratio,
                    "suggested": suggested,
                    "meant": meant,
                    "http": rows,
                    "goals": goals,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
