"""The fleet page for a chain of a thousand stores (domain code, no Flask): the fleet's
totals, a page of stores at a time filtered by a search (name, city, id) and a state,
the stores with parked transactions a page at a time, and the charts' data for a few
stores or summed over the stores shown.

Each store is read as :func:`app.hub.domain.fleet_dashboard.store_entry` shows it (the
same entry as the API's whole-fleet list). The state filter and the totals are SQL over
``store_health.last_seen_at`` (an ISO instant, compared as text), matching the entry's
``status`` for any instant the hub wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.core import clock
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain.fleet import read_instant
from app.hub.domain.fleet_dashboard import (
    FLEET_FROM,
    OFFLINE_AFTER_S,
    fleet_columns,
    mark_pending,
    read_int,
    store_entry,
)
from app.hub.domain.listing import PAGE_SIZE, Page, paginate, store_match
from app.hub.domain.notifications import STORE_TIMEZONE

#: The state filter's values: silent or not (the threshold), never heard from, or with
#: transactions parked.
STATES = ("online", "offline", "never", "parked")
PARKED_PAGE_SIZE = 10
# What the hub writes in last_seen_at (clock.iso): anything else reads as "never".
_INSTANT = "h.last_seen_at LIKE '____-__-__T__:__:__Z'"


@dataclass
class FleetQuery:
    """Which stores: every folded word in the store's name, city or id, and a state."""

    words: list[str] = field(default_factory=list)
    state: str | None = None
    offline_after_s: int = OFFLINE_AFTER_S
    now: datetime = field(default_factory=clock.utcnow)

    @property
    def cut(self) -> str:
        """Silent since this instant or before: offline (the entry's ``silent_s >
        offline_after_s``, in whole seconds, as text)."""
        return clock.iso(self.now - timedelta(seconds=self.offline_after_s + 1))

    def where(self, db: Db) -> tuple[str, list[Any]]:
        """SQL over ``s`` (stores) and ``h`` (store_health), and its parameters."""
        clause, params = store_match(db, self.words)
        state: tuple[str, list[Any]] = {
            "online": (f"{_INSTANT} AND h.last_seen_at > ?", [self.cut]),
            "offline": (f"{_INSTANT} AND h.last_seen_at <= ?", [self.cut]),
            "never": (f"(h.last_seen_at IS NULL OR NOT ({_INSTANT}))", []),
            "parked": ("h.parked_count > 0", []),
        }.get(self.state or "", ("1 = 1", []))
        return f"{clause} AND {state[0]}", [*params, *state[1]]


def summary(db: Db, query: FleetQuery) -> dict[str, int]:
    """The whole fleet's totals: stores, online, offline, never heard from, stores with
    parked transactions and how many are parked."""
    row = hdb.one(
        db,
        "SELECT count(*) AS stores, "  # noqa: S608 (constant SQL)
        f"sum(CASE WHEN {_INSTANT} AND h.last_seen_at > ? THEN 1 ELSE 0 END) AS online, "
        f"sum(CASE WHEN {_INSTANT} AND h.last_seen_at <= ? THEN 1 ELSE 0 END) AS offline, "
        "sum(CASE WHEN h.parked_count > 0 THEN 1 ELSE 0 END) AS parked_stores, "
        "sum(CASE WHEN h.parked_count > 0 THEN h.parked_count ELSE 0 END) AS parked "
        f"FROM {FLEET_FROM}",
        [query.cut, query.cut],
    )
    out = {k: int(v or 0) for k, v in (row or {}).items()}
    out["never"] = out["stores"] - out["online"] - out["offline"]
    return out


def stores_page(db: Db, query: FleetQuery, wanted: int, size: int = PAGE_SIZE) -> Page:
    """The stores matching ``query``, by name, page ``wanted`` (the last if past it)."""
    where, params = query.where(db)
    total = int(hdb.scalar(db, f"SELECT count(*) FROM {FLEET_FROM} WHERE {where}", params))  # noqa: S608
    number, offset = paginate(total, wanted, size)
    rows = hdb.rows(
        db,
        f"SELECT {fleet_columns(db)} FROM {FLEET_FROM} WHERE {where} "  # noqa: S608
        "ORDER BY s.name, s.id LIMIT ? OFFSET ?",
        [*params, size, offset],
    )
    items = [store_entry(r, query.now, query.offline_after_s) for r in rows]
    return Page(items, total, number, size)


def parked_page(db: Db, query: FleetQuery, wanted: int, size: int = PARKED_PAGE_SIZE) -> Page:
    """The matching stores with parked transactions, most parked first, each item with
    the command on its way to the store (if any). ``extra["parked"]``: how many
    transactions are parked in all the matching stores."""
    where, params = query.where(db)
    where += " AND h.parked_count > 0"
    found = hdb.one(
        db,
        f"SELECT count(*) AS n, sum(h.parked_count) AS parked FROM {FLEET_FROM} WHERE {where}",  # noqa: S608
        params,
    ) or {"n": 0, "parked": 0}
    number, offset = paginate(int(found["n"]), wanted, size)
    rows = hdb.rows(
        db,
        f"SELECT {fleet_columns(db)} FROM {FLEET_FROM} WHERE {where} "  # noqa: S608
        "ORDER BY h.parked_count DESC, s.name, s.id LIMIT ? OFFSET ?",
        [*params, size, offset],
    )
    items = [mark_pending(db, store_entry(r, query.now, query.offline_after_s)) for r in rows]
    page = Page(items, int(found["n"]), number, size)
    page.extra["parked"] = int(found["parked"] or 0)
    return page


#: A report at least this far behind counts for "fell behind" (the partial index
#: store_health_history_behind holds only these: the literal must stay the same).
BEHIND_S = 60


def furthest_behind(
    db: Db, query: FleetQuery, limit: int, hours: int = 24
) -> tuple[list[dict[str, Any]], int]:
    """The ``limit`` matching stores that fell furthest behind on the feed in the last
    ``hours`` (their worst report), then, to make up the number, those furthest behind
    now; and how many stores match."""
    where, params = query.where(db)
    total = int(hdb.scalar(db, f"SELECT count(*) FROM {FLEET_FROM} WHERE {where}", params))  # noqa: S608
    since = clock.iso(query.now - timedelta(hours=hours))
    # MATERIALIZED: the reports behind first, through the partial index (SQLite would
    # otherwise walk the (store_id, at) index of every report for its GROUP BY).
    peaks = hdb.execute(
        db,
        "WITH behind AS MATERIALIZED (SELECT x.store_id, x.sync_lag_s "  # noqa: S608
        f"FROM store_health_history x WHERE x.at >= ? AND x.sync_lag_s >= {BEHIND_S}) "
        "SELECT b.store_id, max(b.sync_lag_s) AS worst FROM behind b "
        "JOIN stores s ON s.id = b.store_id LEFT JOIN store_health h ON h.store_id = s.id "
        f"WHERE {where} GROUP BY b.store_id ORDER BY max(b.sync_lag_s) DESC, b.store_id LIMIT ?",
        [since, *params, limit],
    ).fetchall()
    ids = [r[0] for r in peaks]
    if len(ids) < limit:
        skip = f"AND s.id NOT IN ({','.join('?' * len(ids))})" if ids else ""
        now_behind = hdb.rows(
            db,
            f"SELECT t.id FROM (SELECT {fleet_columns(db)} FROM {FLEET_FROM} "  # noqa: S608
            f"WHERE {where} {skip}) t ORDER BY "
            "CASE WHEN t.reported_at >= ? THEN 0 ELSE 1 END, "
            "CASE WHEN t.oldest_unapplied_at IS NULL THEN 1 ELSE 0 END, t.oldest_unapplied_at, "
            "CASE WHEN t.sync_lag_s IS NULL THEN 1 ELSE 0 END, t.sync_lag_s DESC, t.name, t.id "
            "LIMIT ?",
            [*params, *ids, since, limit - len(ids)],
        )
        ids += [r["id"] for r in now_behind]
    if not ids:
        return [], total
    rows = hdb.rows(
        db,
        f"SELECT {fleet_columns(db)} FROM {FLEET_FROM} "  # noqa: S608
        f"WHERE s.id IN ({','.join('?' * len(ids))})",
        ids,
    )
    by_id = {r["id"]: store_entry(r, query.now, query.offline_after_s) for r in rows}
    return [by_id[i] for i in ids if i in by_id], total


def lag_history(
    db: Db, store_ids: list[str], hours: int, now: datetime
) -> dict[str, list[tuple[datetime, int]]]:
    """Per store, the worst reported sync lag of each 10-minute slot of the last
    ``hours`` (grouped in SQL: a store reports every minute)."""
    if not store_ids:
        return {}
    marks = ",".join("?" * len(store_ids))
    rows = hdb.execute(
        db,
        "SELECT store_id, substr(at, 1, 15) AS slot, max(sync_lag_s) FROM store_health_history "  # noqa: S608
        f"WHERE store_id IN ({marks}) AND at >= ? GROUP BY store_id, substr(at, 1, 15)",
        [*store_ids, clock.iso(now - timedelta(hours=hours))],
    ).fetchall()
    out: dict[str, list[tuple[datetime, int]]] = {}
    for store_id, slot, lag in rows:
        instant = read_instant(f"{slot}0:00Z" if isinstance(slot, str) else None)
        value = read_int(lag)
        if instant is None or value is None:
            continue  # a point with no time or no number cannot be drawn
        out.setdefault(store_id, []).append((clock.parse_iso(instant), value))
    for points in out.values():
        points.sort()
    return out


def pickups(
    db: Db,
    days: int,
    now: datetime,
    *,
    store_ids: list[str] | None = None,
    query: FleetQuery | None = None,
    zone: ZoneInfo | None = None,
) -> tuple[list[str], dict[str, list[int]]]:
    """Hand-overs per local day for the last ``days`` days: per store of ``store_ids``,
    else summed over the stores matching ``query`` (under the key ``"*"``). Days are
    read in ``zone``: the views pass the configured one (app.config STORE_TIMEZONE).

    Returns ``(days as YYYY-MM-DD, oldest first; {store id or "*": [count per day]})``.
    """
    zone = zone or ZoneInfo(STORE_TIMEZONE)
    today = now.astimezone(zone).date()
    day_list = [(today - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    start = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), zone)
    index = {d: i for i, d in enumerate(day_list)}
    hour = "substr(ho.at, 1, 13)"
    params: list[Any] = [clock.iso(start)]
    if store_ids is not None:
        marks = ",".join("?" * len(store_ids)) or "NULL"
        sql = (
            f"SELECT o.store_id, {hour}, count(*) FROM handovers ho "  # noqa: S608
            f"JOIN orders o ON o.id = ho.order_id WHERE ho.at >= ? AND o.store_id IN ({marks}) "
            f"GROUP BY o.store_id, {hour}"
        )
        params += store_ids
    elif query is not None and (query.words or query.state):
        where, more = query.where(db)
        sql = (
            f"SELECT '*', {hour}, count(*) FROM handovers ho "  # noqa: S608
            "JOIN orders o ON o.id = ho.order_id JOIN stores s ON s.id = o.store_id "
            "LEFT JOIN store_health h ON h.store_id = s.id "
            f"WHERE ho.at >= ? AND {where} GROUP BY {hour}"
        )
        params += more
    else:
        sql = f"SELECT '*', {hour}, count(*) FROM handovers ho WHERE ho.at >= ? GROUP BY {hour}"  # noqa: S608
    counts: dict[str, list[int]] = {}
    for key, slot, n in hdb.execute(db, sql, params).fetchall():
        instant = read_instant(f"{slot}:00:00Z" if isinstance(slot, str) else None)
        if instant is None:
            continue
        day = clock.parse_iso(instant).astimezone(zone).date().isoformat()
        if day in index:
            counts.setdefault(key, [0] * days)[index[day]] += int(n)
    return day_list, counts
