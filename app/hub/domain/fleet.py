"""The fleet as the hub sees it: store health reports, last contact, sync lag (domain
code, no Flask). The fleet page's reading and head office's commands for a store's
parked transactions are in :mod:`app.hub.domain.fleet_dashboard`.

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

A report is checked field by field (a bad type, a number out of range, a lone surrogate
or a control character: refused, naming the field); only the texts of parked items,
which quote the hub's own rejection messages, are cleaned and cut rather than refused.
What the dashboard reads back is checked again
(:func:`app.hub.domain.fleet_dashboard.fleet_status`): a row written by an older or
buggy hub shows ``invalid`` fields instead of failing the page.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from app.core import clock
from app.core.protocol import MAX_PARKED
from app.core.text import clean_text, text_problem
from app.hub import database as hdb
from app.hub.database import Db

log = logging.getLogger(__name__)

# History rows older than this are deleted as new ones come (charts show 24 h).
HISTORY_KEEP_S = 36 * 3600
# last_seen_at is written at most this often per store: a store's requests must not
# each become a write of their own.
TOUCH_EVERY_S = 2


class HealthError(ValueError):
    """A health report that does not follow the protocol."""


def touch(db: Db, store_id: str, now: datetime | None = None) -> None:
    """Note that ``store_id`` was just heard from (throttled to one write per few s)."""
    moment = now or clock.utcnow()
    stored = hdb.scalar(db, "SELECT last_seen_at FROM store_health WHERE store_id = ?", [store_id])
    seen = read_instant(stored)  # a bad stored value is overwritten
    if seen and (moment - clock.parse_iso(seen)).total_seconds() < TOUCH_EVERY_S:
        return
    try:
        # One atomic upsert: no hub-wide lock (a race only writes the stamp twice).
        with hdb.write(db, lock=None):
            hdb.upsert(
                db,
                "store_health",
                {"store_id": store_id, "last_seen_at": clock.iso(moment)},
                conflict=["store_id"],
            )
    except hdb.OperationalError:
        # A busy database must not fail the store's request over a "last seen" stamp.
        log.warning("could not note that %s was seen", store_id, exc_info=True)


def _int(report: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    value = report.get(name)
    if value is None:
        if not required:
            return None
        raise HealthError(f"{name}: missing (required)")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise HealthError(f"{name} must be a non-negative integer below 2^63")
    return value


def _instant(report: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = report.get(name)
    if value is None and not required:
        return None
    instant = read_instant(value)
    if instant is None:
        raise HealthError(f"{name} must be an ISO-8601 instant (years 1970 to 9998)")
    return instant


def read_instant(value: Any) -> str | None:
    """``value`` as a normalised instant, or None when it is not one we can show."""
    if not isinstance(value, str) or len(value) > 40 or text_problem(value):
        return None
    try:
        moment = clock.parse_iso(value).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return clock.iso(moment) if 1970 <= moment.year <= 9998 else None


def _text(report: dict[str, Any], name: str, limit: int, where: str = "") -> str | None:
    """A text field: None when absent, refused when not clean text of ``limit`` chars."""
    value = report.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise HealthError(f"{where}{name} must be a string")
    why = text_problem(value, limit)
    if why:
        raise HealthError(f"{where}{name}: {why}")
    return value


def _parked(report: dict[str, Any]) -> list[dict[str, str]]:
    items = report.get("parked")
    if items is None:
        items = []
    if not isinstance(items, list) or len(items) > MAX_PARKED:
        raise HealthError(f"parked must be a list of at most {MAX_PARKED} items")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise HealthError(f"parked[{i}] must be an object")
        tx_id = _text(item, "id", 64, f"parked[{i}].")
        if not tx_id:
            raise HealthError(f"parked[{i}].id: a transaction id is needed")
        texts = {}
        for name, limit in (("type", 60), ("reason", 60), ("message", 500), ("created_at", 40)):
            value = item.get(name)
            if value is not None and not isinstance(value, str):
                raise HealthError(f"parked[{i}].{name} must be a string")
            # Accepted and marked: a message quotes what the hub refused (any text).
            texts[name] = clean_text(value or "", limit)
        out.append({"id": tx_id, **texts})
    return out


def oldest_unapplied_sql(db: Db, cursor: str, store_id: str) -> str:
    """SQL for the ``created_at`` of the oldest change after ``cursor`` for ``store_id``
    (or for every store); ``cursor`` and ``store_id`` are SQL expressions (a ``?``, or
    columns of an outer query: the fleet page asks it of every store in one query).

    On SQLite, "+store_id" keeps the planner on the seq (rowid) range, which stops at the
    first match, rather than an OR over the (store_id, seq) index and a sort
    (app/hub/domain/changes.py does the same). PostgreSQL has no such hint (unary + on
    text is an error) and needs none.
    """
    col = "+c.store_id" if hdb.dialect(db) == hdb.SQLITE else "c.store_id"
    return (
        f"SELECT c.created_at FROM changes c WHERE c.seq > {cursor} "  # noqa: S608
        f"AND ({col} IS NULL OR {col} = {store_id}) ORDER BY c.seq LIMIT 1"
    )


def lag_since(created_at: str | None, now: datetime) -> int:
    """The sync lag given the oldest unapplied change's instant (None: up to date)."""
    if created_at is None:
        return 0
    return max(0, int((now - clock.parse_iso(created_at)).total_seconds()))


def sync_lag(db: Db, store_id: str, cursor: int | None, now: datetime) -> int | None:
    """Age in seconds of the oldest change the store has not applied (0: up to date)."""
    if cursor is None:
        return None
    return lag_since(hdb.scalar(db, oldest_unapplied_sql(db, "?", "?"), [cursor, store_id]), now)


def record_health(
    db: Db, store_id: str, report: dict[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """Store a health report as the store's current state plus a history row.

    Returns what the hub computed: ``{clock_skew_s, sync_lag_s, received_at}``.
    Raises HealthError for a malformed report.
    """
    moment = now or clock.utcnow()
    if not isinstance(report, dict):
        raise HealthError("the report must be a JSON object")
    sent_at = _instant(report, "sent_at", required=True)
    if sent_at is None:
        raise HealthError("sent_at: missing (required)")
    skew = round((clock.parse_iso(sent_at) - moment).total_seconds(), 1)
    cursor_raw = report.get("cursor")
    if (
        isinstance(cursor_raw, str)
        and cursor_raw.isascii()
        and cursor_raw.isdigit()
        and len(cursor_raw) <= 18
    ):
        cursor_raw = int(cursor_raw)  # the protocol's cursor is an opaque string
    cursor = _int({"cursor": cursor_raw}, "cursor")
    row = {
        "store_id": store_id,
        "reported_at": clock.iso(moment),
        "software_version": _text(report, "software_version", 40) or None,
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
    with hdb.write(db):
        row["sync_lag_s"] = sync_lag(db, store_id, cursor, moment)
        hdb.upsert(db, "store_health", row, conflict=["store_id"])
        hdb.execute(
            db,
            "INSERT INTO store_health_history (store_id, at, sync_lag_s, outbox_depth) "
            "VALUES (?, ?, ?, ?)",
            [store_id, row["reported_at"], row["sync_lag_s"], row["outbox_depth"]],
        )
        hdb.execute(
            db,
            "DELETE FROM store_health_history WHERE store_id = ? AND at < ?",
            [store_id, clock.iso(moment - timedelta(seconds=HISTORY_KEEP_S))],
        )
    return {
        "received_at": row["reported_at"],
        "clock_skew_s": skew,
        "sync_lag_s": row["sync_lag_s"],
    }
