"""The web shop's stores among a thousand (domain code, no Flask): which stores hold a
product, and which can serve a cart, a page at a time and searchable by city or name.

Both read a variant's stock in every store through the ``stock_levels (sku, store_id,
qty)`` index (app/hub/migrations.py m009): the stores carrying an item, never the whole
table. Stores come by city then name; the checkout's chooser puts first the stores that
can serve the whole cart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain.listing import Page, paginate, store_match

SHOP_PAGE_SIZE = 10


def store(db: Db, store_id: str) -> dict[str, Any] | None:
    """One store as the shop shows it (id, name, city, address), or None."""
    return hdb.one(db, "SELECT id, name, city, address FROM stores WHERE id = ?", [store_id])


def stores_with_stock(
    db: Db, skus: Sequence[str], words: list[str], wanted: int, size: int = SHOP_PAGE_SIZE
) -> Page:
    """The stores holding at least one unit of one of ``skus`` (a product's sizes in one
    colour) whose name, city or id hold every word; by city, then name.

    Each item: ``id, name, city, address, units`` and ``in_stock``, the skus it holds
    (with ``qty``), in the order of ``skus``.
    """
    if not skus:
        return Page([], 0, 1, size)
    marks = ",".join("?" * len(skus))
    match, params = store_match(db, words)
    held = (
        f"SELECT l.store_id, sum(l.qty) AS units FROM stock_levels l "  # noqa: S608
        f"WHERE l.sku IN ({marks}) AND l.qty > 0 GROUP BY l.store_id"
    )
    base = f"FROM ({held}) held JOIN stores s ON s.id = held.store_id WHERE {match}"
    total = int(hdb.scalar(db, f"SELECT count(*) {base}", [*skus, *params]))
    number, offset = paginate(total, wanted, size)
    rows = hdb.rows(
        db,
        f"SELECT s.id, s.name, s.city, s.address, held.units {base} "  # noqa: S608
        "ORDER BY s.city, s.name, s.id LIMIT ? OFFSET ?",
        [*skus, *params, size, offset],
    )
    if rows:
        ids = [r["id"] for r in rows]
        found: dict[str, dict[str, int]] = {}
        for store_id, sku, qty in hdb.execute(
            db,
            "SELECT store_id, sku, qty FROM stock_levels WHERE sku IN "  # noqa: S608
            f"({marks}) AND store_id IN ({','.join('?' * len(ids))}) AND qty > 0",
            [*skus, *ids],
        ).fetchall():
            found.setdefault(store_id, {})[sku] = qty
        for r in rows:
            held_here = found.get(r["id"], {})
            r["in_stock"] = [{"sku": s, "qty": held_here[s]} for s in skus if s in held_here]
            r["units"] = int(r["units"] or 0)
    return Page(rows, total, number, size)


def _served(need: Mapping[str, int]) -> tuple[str, list[Any]]:
    """SQL counting, per store, the lines of ``need`` (sku -> qty) it can serve in full."""
    cases = " ".join("WHEN l.sku = ? THEN CASE WHEN l.qty >= ? THEN 1 ELSE 0 END" for _ in need)
    marks = ",".join("?" * len(need))
    sql = (
        f"SELECT l.store_id, sum(CASE {cases} ELSE 0 END) AS ok FROM stock_levels l "  # noqa: S608
        f"WHERE l.sku IN ({marks}) GROUP BY l.store_id"
    )
    params: list[Any] = [v for sku, qty in need.items() for v in (sku, qty)] + list(need)
    return sql, params


def chooser(
    db: Db, need: Mapping[str, int], words: list[str], wanted: int, size: int = SHOP_PAGE_SIZE
) -> Page:
    """The stores to collect a cart in (``need``: sku -> qty), matching the search: those
    that can serve every line first, then by how many, then by city and name. Each item:
    ``id, name, city, address, lines_ok``. ``extra["complete"]``: how many stores (among
    the matches) can serve the whole cart."""
    match, params = store_match(db, words)
    if need:
        served, served_params = _served(need)
        base = f"FROM stores s LEFT JOIN ({served}) a ON a.store_id = s.id WHERE {match}"
        ok = "coalesce(a.ok, 0)"
    else:
        base, served_params, ok = f"FROM stores s WHERE {match}", [], "0"
    all_params = [*served_params, *params]
    counts = hdb.one(
        db,
        f"SELECT count(*) AS n, sum(CASE WHEN {ok} >= ? THEN 1 ELSE 0 END) AS complete {base}",  # noqa: S608
        [max(1, len(need)), *all_params],
    ) or {"n": 0, "complete": 0}
    number, offset = paginate(int(counts["n"]), wanted, size)
    rows = hdb.rows(
        db,
        f"SELECT s.id, s.name, s.city, s.address, {ok} AS lines_ok {base} "  # noqa: S608
        f"ORDER BY {ok} DESC, s.city, s.name, s.id LIMIT ? OFFSET ?",
        [*all_params, size, offset],
    )
    for r in rows:
        r["lines_ok"] = int(r["lines_ok"] or 0)
    page = Page(rows, int(counts["n"]), number, size)
    page.extra["complete"] = int(counts["complete"] or 0) if need else 0
    return page
