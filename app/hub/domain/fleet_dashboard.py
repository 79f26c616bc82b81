"""The fleet page's side: each store's status read back, the charts' series, and the
retry/discard commands head office sends for a store's parked transactions (domain
code, no Flask). What each number means is in :mod:`app.hub.domain.fleet`, which
records the stores' health reports.

What the dashboard reads back is checked again (:func:`fleet_status`): a row written by
an older or buggy hub shows ``invalid`` fields instead of failing the page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.core import clock
from app.core.protocol import CHANGE_OUTBOX_COMMAND, COMMAND_ACTIONS, MAX_PARKED
from app.core.text import clean_text
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain.changes import append_change
from app.hub.domain.fleet import lag_since, oldest_unapplied_sql, read_instant
from app.hub.domain.notifications import STORE_TIMEZONE

OFFLINE_AFTER_S = 120


def offline_threshold(config: Mapping[str, Any]) -> int:
    """Seconds of silence after which a store is shown offline (``HQ_OFFLINE_AFTER_S``)."""
    try:
        value = int(config.get("HQ_OFFLINE_AFTER_S", OFFLINE_AFTER_S))
    except (TypeError, ValueError):
        return OFFLINE_AFTER_S
    return max(1, value)


def _age(now: datetime, instant: str | None) -> int | None:
    if not instant:
        return None
    return max(0, int((now - clock.parse_iso(instant)).total_seconds()))


def _pending_commands(db: Db, store_id: str, cursor: int | None) -> dict[str, dict]:
    """Commands for ``store_id`` it has not applied yet (seq after its cursor), by tx."""
    rows = hdb.execute(
        db,
        "SELECT seq, key, data FROM changes WHERE kind = ? AND store_id = ? "
        "AND seq > ? ORDER BY seq",
        [CHANGE_OUTBOX_COMMAND, store_id, cursor or 0],
    ).fetchall()
    out = {}
    for seq, key, data in rows:
        try:
            command = json.loads(data)
        except (TypeError, ValueError):
            continue
        if isinstance(command, dict):
            out[key] = {"seq": seq, **command}
    return out


INT_COLUMNS = (
    "free_disk_bytes",
    "db_size_bytes",
    "outbox_depth",
    "parked_count",
    "cursor",
    "sync_lag_s",
)


INSTANT_COLUMNS = ("last_seen_at", "reported_at", "started_at", "oldest_unsent_at")


def read_int(value: Any) -> int | None:
    """``value`` when it is a non-negative 64-bit integer (what the hub stores), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    return None


def _read_parked(text: Any) -> list[dict[str, str]] | None:
    """The stored parked list, each item with string fields; None if it is not one."""
    try:
        items = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(items, list):
        return None
    out = []
    for item in items[:MAX_PARKED]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            return None
        clean = {
            name: clean_text(item[name], 500) if isinstance(item.get(name), str) else ""
            for name in ("id", "type", "reason", "message")
        }
        # The page formats it as a date: only an instant it can read.
        clean["created_at"] = read_instant(item.get("created_at")) or ""
        out.append(clean)
    return out


def read_health(row: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A ``store_health`` row as the dashboard may show it, and the fields whose stored
    value is not one (an older or buggy hub wrote it): those read as None."""
    clean = dict(row)
    invalid = []
    for name in INT_COLUMNS:
        clean[name] = read_int(row.get(name))
        if clean[name] is None and row.get(name) is not None:
            invalid.append(name)
    for name in INSTANT_COLUMNS:
        clean[name] = read_instant(row.get(name))
        if clean[name] is None and row.get(name) is not None:
            invalid.append(name)
    skew = row.get("clock_skew_s")
    clean["clock_skew_s"] = (
        float(skew)
        if isinstance(skew, int | float) and not isinstance(skew, bool) and abs(skew) < 1e12
        else None
    )
    if clean["clock_skew_s"] is None and skew is not None:
        invalid.append("clock_skew_s")
    version = row.get("software_version")
    clean["software_version"] = clean_text(version, 40) if isinstance(version, str) else None
    if version is not None and (
        not isinstance(version, str) or clean["software_version"] != version
    ):
        invalid.append("software_version")
    parked = _read_parked(row.get("parked") or "[]")
    clean["parked"] = parked or []
    if parked is None:
        invalid.append("parked")
    return clean, invalid


def fleet_columns(db: Db) -> str:
    """The columns every fleet query reads (``s``: stores, ``h``: store_health): the store,
    its health row, and the instant of the oldest change it has not applied yet (from the
    cursor it reported), a correlated subquery per store."""
    return (
        "s.id, s.name, s.city, h.*, "
        f"({oldest_unapplied_sql(db, 'h.cursor', 's.id')}) AS oldest_unapplied_at"
    )


FLEET_FROM = "stores s LEFT JOIN store_health h ON h.store_id = s.id"


def store_entry(
    raw: dict[str, Any], moment: datetime, offline_after_s: int = OFFLINE_AFTER_S
) -> dict[str, Any]:
    """One store as the dashboard shows it, from a row of :func:`fleet_columns`."""
    r, invalid = read_health(raw)
    silent = _age(moment, r["last_seen_at"])
    if silent is None:
        status = "never"
    elif silent > offline_after_s:
        status = "offline"
    else:
        status = "online"
    return {
        "id": r["id"],
        "name": r["name"],
        "city": r["city"],
        "status": status,
        "online": status == "online",
        "last_seen_at": r["last_seen_at"],
        "silent_s": silent,
        "reported_at": r["reported_at"],
        "software_version": r["software_version"],
        "started_at": r["started_at"],
        "free_disk_bytes": r["free_disk_bytes"],
        "db_size_bytes": r["db_size_bytes"],
        "outbox_depth": r["outbox_depth"],
        "oldest_unsent_at": r["oldest_unsent_at"],
        "oldest_unsent_age_s": _age(moment, r["oldest_unsent_at"]),
        "parked_count": r["parked_count"] or 0,
        "parked": r["parked"],
        "clock_skew_s": r["clock_skew_s"],
        "cursor": r["cursor"],
        "sync_lag_s": (
            None if r["cursor"] is None else lag_since(raw["oldest_unapplied_at"], moment)
        ),
        # Fields whose stored value could not be read: shown as "valeur invalide".
        "invalid": invalid,
    }


def mark_pending(db: Db, store: dict[str, Any]) -> dict[str, Any]:
    """Each parked item's command on its way to the store (retry, discard) or None."""
    # Only a store with parked items can have a command pending on one.
    pending = _pending_commands(db, store["id"], store["cursor"]) if store["parked"] else {}
    for item in store["parked"]:
        command = pending.get(item["id"])
        item["pending"] = command["action"] if command else None
    return store


def fleet_status(
    db: Db, offline_after_s: int = OFFLINE_AFTER_S, now: datetime | None = None
) -> list[dict[str, Any]]:
    """One entry per store, by name: online or not, health, outbox, parked items.

    ``status`` is ``online``, ``offline`` (silent for more than ``offline_after_s``) or
    ``never`` (never heard from). Ages are in seconds as of ``now``. The whole fleet (the
    API's): the console reads it a page at a time (app/hub/domain/fleet_pages.py).
    """
    moment = now or clock.utcnow()
    # One query for the whole fleet (a thousand stores: no query per store), the age of
    # each store's oldest unapplied change included.
    rows = hdb.rows(
        db,
        f"SELECT {fleet_columns(db)} FROM {FLEET_FROM} ORDER BY s.name, s.id",  # noqa: S608
    )
    return [mark_pending(db, store_entry(raw, moment, offline_after_s)) for raw in rows]


def lag_history(
    db: Db, hours: int = 24, now: datetime | None = None
) -> dict[str, list[tuple[datetime, int | None, int | None]]]:
    """Per store, ``(at, sync_lag_s, outbox_depth)`` of the reports of the last ``hours``."""
    moment = now or clock.utcnow()
    since = clock.iso(moment - timedelta(hours=hours))
    out: dict[str, list[tuple[datetime, int | None, int | None]]] = {}
    for store_id, at, lag, depth in hdb.execute(
        db,
        "SELECT store_id, at, sync_lag_s, outbox_depth FROM store_health_history "
        "WHERE at >= ? ORDER BY store_id, at",
        [since],
    ).fetchall():
        instant = read_instant(at)
        if instant is None:
            continue  # a point with no time cannot be drawn
        out.setdefault(store_id, []).append(
            (clock.parse_iso(instant), read_int(lag), read_int(depth))
        )
    return out


def pickups_per_day(
    db: Db, days: int = 14, now: datetime | None = None, zone: ZoneInfo | None = None
) -> tuple[list[str], dict[str, list[int]]]:
    """Hand-overs per store per day (the shops' local days), for the last ``days`` days.

    Days are read in ``zone``: a view passes the configured one (app.config
    STORE_TIMEZONE, which defaults to notifications.STORE_TIMEZONE).

    Returns ``(days as YYYY-MM-DD, oldest first; {store_id: [count per day]})``.
    """
    zone = zone or ZoneInfo(STORE_TIMEZONE)
    today = (now or clock.utcnow()).astimezone(zone).date()
    day_list = [(today - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    start = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), zone)
    counts: dict[str, list[int]] = {}
    index = {d: i for i, d in enumerate(day_list)}
    for store_id, at in hdb.execute(
        db,
        "SELECT o.store_id, h.at FROM handovers h JOIN orders o ON o.id = h.order_id "
        "WHERE h.at >= ?",
        [clock.iso(start)],
    ).fetchall():
        instant = read_instant(at)
        if instant is None:
            continue
        day = clock.parse_iso(instant).astimezone(zone).date().isoformat()
        if day in index:
            counts.setdefault(store_id, [0] * days)[index[day]] += 1
    return day_list, counts


def queue_outbox_command(
    db: Db,
    store_id: str,
    tx_id: str,
    action: str,
    reason: str = "",
    by: str = "",
) -> int:
    """Ask a store, through the change feed, to retry or discard a parked transaction.

    Only a transaction the store reported as parked can be named. For a retry the hub
    also forgets its recorded rejection of that id, so the resent transaction is judged
    again (otherwise the hub would answer "duplicate" of a rejection and the store
    would park it again). Returns the change's seq.
    """
    if action not in COMMAND_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(COMMAND_ACTIONS)}")
    reason = (reason or "").strip()[:300]
    if action == "discard" and not reason:
        raise ValueError("a reason is needed to discard a transaction")
    with hdb.write(db):
        row = hdb.one(db, "SELECT parked FROM store_health WHERE store_id = ?", [store_id])
        parked_ids = (
            {item["id"] for item in (_read_parked(row["parked"] or "[]") or [])} if row else set()
        )
        if tx_id not in parked_ids:
            raise ValueError("this store did not report that transaction as parked")
        if action == "retry":
            hdb.execute(
                db,
                "DELETE FROM transactions WHERE id = ? AND store_id = ? AND status = 'rejected'",
                [tx_id, store_id],
            )
        return append_change(
            db,
            CHANGE_OUTBOX_COMMAND,
            tx_id,
            {"tx_id": tx_id, "action": action, "reason": reason, "by": by[:254]},
            store_id=store_id,
        )
