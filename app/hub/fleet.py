"""The fleet as the hub sees it: store health reports, last contact, sync lag, and the
head-office commands that resolve a store's parked transactions (domain code, no Flask).

What each number means:

- ``last_seen_at``: the last signed request of the store (a health report, a batch of
  transactions, a change-feed page or long-poll). A store silent for longer than the
  offline threshold (``HQ_OFFLINE_AFTER_S``, default 120 s) is shown offline.
- ``outbox_depth``, ``oldest_unsent_at``, ``parked``: what the store's last health
  report said about its outbox (unsent rows; rows the hub rejected, set aside).
- ``clock_skew_s``: the store's clock minus the hub's, from the report's ``sent_at``
  (the request's travel time makes it read slightly low).
- ``sync_lag_s``: how far behind the store's applied change cursor is: the age of the
  oldest change for that store (or for every store) with a seq after the cursor the
  store reported, 0 when it has applied everything. Computed at each report for the
  history, and again from the last reported cursor when the dashboard is drawn, so the
  lag of a store that went silent keeps growing.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from .. import clock
from .. import db as dbmod
from .changes import append_change
from .notifications import STORE_TIMEZONE

log = logging.getLogger(__name__)

OFFLINE_AFTER_S = 120
# History rows older than this are deleted as new ones come (charts show 24 h).
HISTORY_KEEP_S = 36 * 3600
# last_seen_at is written at most this often per store: a store's requests must not
# each become a write of their own.
TOUCH_EVERY_S = 2
MAX_PARKED = 50
COMMAND_ACTIONS = ("retry", "discard")


class HealthError(ValueError):
    """A health report that does not follow the protocol."""


def offline_threshold(config: Mapping[str, Any]) -> int:
    """Seconds of silence after which a store is shown offline (``HQ_OFFLINE_AFTER_S``)."""
    try:
        value = int(config.get("HQ_OFFLINE_AFTER_S", OFFLINE_AFTER_S))
    except (TypeError, ValueError):
        return OFFLINE_AFTER_S
    return max(1, value)


def touch(db: Database, store_id: str, now: datetime | None = None) -> None:
    """Note that ``store_id`` was just heard from (throttled to one write per few s)."""
    moment = now or clock.utcnow()
    row = db.execute(
        "SELECT last_seen_at FROM store_health WHERE store_id = ?", [store_id]
    ).fetchone()
    if row and row[0] and (moment - clock.parse_iso(row[0])).total_seconds() < TOUCH_EVERY_S:
        return
    try:
        with dbmod.write(db):
            db.execute(
                "INSERT INTO store_health (store_id, last_seen_at) VALUES (?, ?) "
                "ON CONFLICT (store_id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
                [store_id, clock.iso(moment)],
            )
    except sqlite3.OperationalError:
        # A busy database must not fail the store's request over a "last seen" stamp.
        log.warning("could not note that %s was seen", store_id, exc_info=True)


def _int(report: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    value = report.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise HealthError(f"{name} must be a non-negative integer")
    return value


def _instant(report: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = report.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise HealthError(f"{name} must be an ISO-8601 instant")
    try:
        return clock.iso(clock.parse_iso(value))
    except ValueError as exc:
        raise HealthError(f"{name} must be an ISO-8601 instant") from exc


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _parked(report: dict[str, Any]) -> list[dict[str, str]]:
    items = report.get("parked") or []
    if not isinstance(items, list) or len(items) > MAX_PARKED:
        raise HealthError(f"parked must be a list of at most {MAX_PARKED} items")
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise HealthError("each parked item needs an id")
        out.append(
            {
                "id": item["id"][:64],
                "type": _text(item.get("type"), 60),
                "reason": _text(item.get("reason"), 60),
                "message": _text(item.get("message"), 500),
                "created_at": _text(item.get("created_at"), 40),
            }
        )
    return out


def sync_lag(db: Database, store_id: str, cursor: int | None, now: datetime) -> int | None:
    """Age in seconds of the oldest change the store has not applied (0: up to date)."""
    if cursor is None:
        return None
    row = db.execute(
        "SELECT created_at FROM changes WHERE seq > ? AND (+store_id IS NULL OR +store_id = ?) "
        "ORDER BY seq LIMIT 1",
        [cursor, store_id],
    ).fetchone()
    if row is None:
        return 0
    return max(0, int((now - clock.parse_iso(row[0])).total_seconds()))


def record_health(
    db: Database, store_id: str, report: dict[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """Store a health report as the store's current state plus a history row.

    Returns what the hub computed: ``{clock_skew_s, sync_lag_s, received_at}``.
    Raises HealthError for a malformed report.
    """
    moment = now or clock.utcnow()
    if not isinstance(report, dict):
        raise HealthError("the report must be a JSON object")
    sent_at = _instant(report, "sent_at", required=True)
    assert sent_at is not None
    skew = round((clock.parse_iso(sent_at) - moment).total_seconds(), 1)
    cursor_raw = report.get("cursor")
    if isinstance(cursor_raw, str) and cursor_raw.isdigit() and len(cursor_raw) <= 18:
        cursor_raw = int(cursor_raw)  # the protocol's cursor is an opaque string
    cursor = _int({"cursor": cursor_raw}, "cursor")
    row = {
        "store_id": store_id,
        "reported_at": clock.iso(moment),
        "software_version": _text(report.get("software_version"), 40) or None,
        "started_at": _instant(report, "started_at"),
        "free_disk_bytes": _int(report, "free_disk_bytes"),
        "db_size_bytes": _int(report, "db_size_bytes"),
        "outbox_depth": _int(report, "outbox_depth"),
        "oldest_unsent_at": _instant(report, "oldest_unsent_at"),
        "parked": None,
        "parked_count": 0,
        "cursor": cursor,
        "sync_lag_s": None,
        "clock_skew_s": skew,
        "last_seen_at": clock.iso(moment),
    }
    parked = _parked(report)
    row["parked"] = json.dumps(parked, ensure_ascii=False, separators=(",", ":"))
    # The list is capped at MAX_PARKED; the count may say more.
    row["parked_count"] = max(len(parked), _int(report, "parked_count") or 0)
    with dbmod.write(db):
        row["sync_lag_s"] = sync_lag(db, store_id, cursor, moment)
        columns = list(row)
        db.execute(
            f"INSERT INTO store_health ({', '.join(columns)}) "  # noqa: S608
            f"VALUES ({', '.join('?' * len(columns))}) ON CONFLICT (store_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in columns[1:]),
            [row[c] for c in columns],
        )
        db.execute(
            "INSERT INTO store_health_history (store_id, at, sync_lag_s, outbox_depth) "
            "VALUES (?, ?, ?, ?)",
            [store_id, row["reported_at"], row["sync_lag_s"], row["outbox_depth"]],
        )
        db.execute(
            "DELETE FROM store_health_history WHERE store_id = ? AND at < ?",
            [store_id, clock.iso(moment - timedelta(seconds=HISTORY_KEEP_S))],
        )
    return {
        "received_at": row["reported_at"],
        "clock_skew_s": skew,
        "sync_lag_s": row["sync_lag_s"],
    }


def _age(now: datetime, instant: str | None) -> int | None:
    if not instant:
        return None
    return max(0, int((now - clock.parse_iso(instant)).total_seconds()))


def _pending_commands(db: Database, store_id: str, cursor: int | None) -> dict[str, dict]:
    """Commands for ``store_id`` it has not applied yet (seq after its cursor), by tx."""
    rows = db.execute(
        "SELECT seq, key, data FROM changes WHERE kind = 'outbox_command' AND store_id = ? "
        "AND seq > ? ORDER BY seq",
        [store_id, cursor or 0],
    ).fetchall()
    return {key: {"seq": seq, **json.loads(data)} for seq, key, data in rows}


def fleet_status(
    db: Database, offline_after_s: int = OFFLINE_AFTER_S, now: datetime | None = None
) -> list[dict[str, Any]]:
    """One entry per store, by name: online or not, health, outbox, parked items.

    ``status`` is ``online``, ``offline`` (silent for more than ``offline_after_s``) or
    ``never`` (never heard from). Ages are in seconds as of ``now``.
    """
    moment = now or clock.utcnow()
    rows = db.execute_returning_dicts(
        """SELECT s.id, s.name, s.city, h.* FROM stores s
           LEFT JOIN store_health h ON h.store_id = s.id ORDER BY s.name, s.id"""
    )
    fleet = []
    for r in rows:
        silent = _age(moment, r["last_seen_at"])
        if silent is None:
            status = "never"
        elif silent > offline_after_s:
            status = "offline"
        else:
            status = "online"
        pending = _pending_commands(db, r["id"], r["cursor"])
        parked = json.loads(r["parked"] or "[]")
        for item in parked:
            command = pending.get(item["id"])
            item["pending"] = command["action"] if command else None
        fleet.append(
            {
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
                "parked": parked,
                "clock_skew_s": r["clock_skew_s"],
                "cursor": r["cursor"],
                "sync_lag_s": sync_lag(db, r["id"], r["cursor"], moment),
            }
        )
    return fleet


def lag_history(
    db: Database, hours: int = 24, now: datetime | None = None
) -> dict[str, list[tuple[datetime, int | None, int | None]]]:
    """Per store, ``(at, sync_lag_s, outbox_depth)`` of the reports of the last ``hours``."""
    moment = now or clock.utcnow()
    since = clock.iso(moment - timedelta(hours=hours))
    out: dict[str, list[tuple[datetime, int | None, int | None]]] = {}
    for store_id, at, lag, depth in db.execute(
        "SELECT store_id, at, sync_lag_s, outbox_depth FROM store_health_history "
        "WHERE at >= ? ORDER BY store_id, at",
        [since],
    ).fetchall():
        out.setdefault(store_id, []).append((clock.parse_iso(at), lag, depth))
    return out


def pickups_per_day(
    db: Database, days: int = 14, now: datetime | None = None
) -> tuple[list[str], dict[str, list[int]]]:
    """Hand-overs per store per day (the shops' local days), for the last ``days`` days.

    Returns ``(days as YYYY-MM-DD, oldest first; {store_id: [count per day]})``.
    """
    zone = ZoneInfo(STORE_TIMEZONE)
    today = (now or clock.utcnow()).astimezone(zone).date()
    day_list = [(today - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    start = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), zone)
    counts: dict[str, list[int]] = {}
    index = {d: i for i, d in enumerate(day_list)}
    for store_id, at in db.execute(
        "SELECT o.store_id, h.at FROM handovers h JOIN orders o ON o.id = h.order_id "
        "WHERE h.at >= ?",
        [clock.iso(start)],
    ).fetchall():
        day = clock.parse_iso(at).astimezone(zone).date().isoformat()
        if day in index:
            counts.setdefault(store_id, [0] * days)[index[day]] += 1
    return day_list, counts


def queue_outbox_command(
    db: Database,
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
    with dbmod.write(db):
        row = db.execute(
            "SELECT parked FROM store_health WHERE store_id = ?", [store_id]
        ).fetchone()
        parked_ids = {item["id"] for item in json.loads(row[0] or "[]")} if row else set()
        if tx_id not in parked_ids:
            raise ValueError("this store did not report that transaction as parked")
        if action == "retry":
            db.execute(
                "DELETE FROM transactions WHERE id = ? AND store_id = ? AND status = 'rejected'",
                [tx_id, store_id],
            )
        return append_change(
            db,
            "outbox_command",
            tx_id,
            {"tx_id": tx_id, "action": action, "reason": reason, "by": by[:254]},
            store_id=store_id,
        )


def human_bytes(n: int | None) -> str:
    """``123456789`` -> ``117,7 Mo`` (French units), '' for None."""
    if n is None:
        return ""
    units = ["o", "Ko", "Mo", "Go", "To"]
    i = 0 if n < 1024 else min(int(math.log(n, 1024)), len(units) - 1)
    value = n / 1024**i
    text = f"{value:.0f}" if i == 0 or value >= 100 else f"{value:.1f}"
    return f"{text.replace('.', ',')}\u00a0{units[i]}"


def human_age(seconds: int | float | None) -> str:
    """``3725`` -> ``1 h 02 min`` (French), '' for None."""
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}\u00a0s"
    if s < 3600:
        return f"{s // 60}\u00a0min {s % 60:02d}\u00a0s"
    if s < 86400:
        return f"{s // 3600}\u00a0h {(s % 3600) // 60:02d}\u00a0min"
    return f"{s // 86400}\u00a0j {(s % 86400) // 3600}\u00a0h"
