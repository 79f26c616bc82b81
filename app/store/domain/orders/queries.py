"""Reading orders: one order, the counter's lists and their counts, search by number or
customer name, recorded hand-overs and returns; and the guards every action starts
with (:func:`require`, :func:`require_manager`)."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from app.core import clock
from app.store.domain import staff
from app.store.domain.orders.calendar import Calendar
from app.store.domain.orders.status import READY, OrderError

PAGE_SIZE = 25  # a tablet screen shows ~8 rows; rendering is the cost, not the query
VIEWS = ("to_prepare", "preparing", "ready", "collected_today", "expired")
_NUMBER = re.compile(r"(?:CC-?)?(\d{8})", re.IGNORECASE)


def customer_key(name: str) -> str:
    """A name for matching: lower case, no accents, single spaces."""
    decomposed = unicodedata.normalize("NFKD", name or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def _lines(db: Database, order_id: str) -> list[dict[str, Any]]:
    return db.execute_returning_dicts(
        "SELECT * FROM order_lines WHERE order_id = ? ORDER BY line", [order_id]
    )


def get_order(db: Database, order_id: str, *, lines: bool = True) -> dict[str, Any] | None:
    """One order with its lines, or None."""
    rows = db.execute_returning_dicts("SELECT * FROM orders WHERE id = ?", [order_id])
    if not rows:
        return None
    order = rows[0]
    if lines:
        order["lines"] = _lines(db, order_id)
    return order


def normalise_number(text: str) -> str | None:
    """``CC-12345678`` from ``cc12345678``, ``12345678`` or ``CC-12345678``; else None."""
    m = _NUMBER.fullmatch((text or "").strip())
    return f"CC-{m.group(1)}" if m else None


def find_by_number(db: Database, number: str) -> dict[str, Any] | None:
    """The order with this number (typed loosely), or None."""
    canonical = normalise_number(number)
    if canonical is None:
        return None
    row = db.execute("SELECT id FROM orders WHERE number = ?", [canonical]).fetchone()
    return get_order(db, row[0]) if row else None


def search(
    db: Database, q: str, limit: int = 20, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Orders by number or customer name (accent- and case-insensitive), newest first."""
    now = now or clock.utcnow()
    q = (q or "").strip()[:80]
    if not q:
        return []
    number = normalise_number(q)
    if number:
        rows = db.execute_returning_dicts(f"{_ROWS} WHERE number = ?", [number])  # noqa: S608
        return _annotate(db, rows, now)
    key = customer_key(q)
    if len(key) < 2:
        return []
    escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = db.execute_returning_dicts(
        f"""{_ROWS} WHERE customer_key LIKE ? ESCAPE '\\'
           ORDER BY placed_at DESC LIMIT ?""",  # noqa: S608
        [f"%{escaped}%", limit],
    )
    return _annotate(db, rows, now)


# A list row: the order and its unit count. ``item_count``, not ``items``: a template
# reading ``o["items"]`` of a row without it got the dict's ``items`` method (a 500).
_ROWS = """SELECT o.*, (SELECT sum(qty) FROM order_lines l WHERE l.order_id = o.id)
           AS item_count FROM orders o"""


def _view_sql(view: str, cal: Calendar, now: datetime) -> tuple[str, list[Any]]:
    if view == "to_prepare":
        return "status = 'placed' ORDER BY promised_at, placed_at", []
    if view == "preparing":
        return "status = 'preparing' ORDER BY promised_at, placed_at", []
    if view == "ready":
        return (
            "status IN ('ready', 'ready_partial', 'partially_collected') "
            "ORDER BY expires_at, number",
            [],
        )
    if view == "collected_today":
        since = clock.iso(cal.midnight(cal.local_date(now)))
        return "collected_at >= ? ORDER BY collected_at DESC", [since]
    if view == "expired":
        return "status = 'expired' ORDER BY expires_at DESC", []
    raise OrderError("unknown_view", f"no list called {view}")


def counts(db: Database, now: datetime | None = None) -> dict[str, int]:
    """How many orders each list holds."""
    now = now or clock.utcnow()
    cal = Calendar(db)
    by_status = dict(db.execute("SELECT status, count(*) FROM orders GROUP BY status").fetchall())
    today = clock.iso(cal.midnight(cal.local_date(now)))
    collected = db.execute(
        "SELECT count(*) FROM orders WHERE collected_at >= ?", [today]
    ).fetchone()[0]
    return {
        "to_prepare": by_status.get("placed", 0),
        "preparing": by_status.get("preparing", 0),
        "ready": sum(by_status.get(s, 0) for s in READY),
        "collected_today": collected,
        "expired": by_status.get("expired", 0),
    }


def list_orders(
    db: Database,
    view: str,
    *,
    now: datetime | None = None,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> list[dict[str, Any]]:
    """One page of a list, with ``late_minutes`` (to prepare) and ``days_left`` (ready)."""
    now = now or clock.utcnow()
    cal = Calendar(db)
    where, params = _view_sql(view, cal, now)
    rows = db.execute_returning_dicts(
        f"{_ROWS} WHERE {where} LIMIT ? OFFSET ?",  # noqa: S608
        [*params, max(1, min(limit, 200)), max(0, offset)],
    )
    return _annotate(db, rows, now, cal)


def _annotate(
    db: Database, rows: list[dict[str, Any]], now: datetime, cal: Calendar | None = None
) -> list[dict[str, Any]]:
    """``late_minutes`` and ``days_left`` on list rows (search results alike)."""
    cal = cal or Calendar(db)
    today = cal.local_date(now)
    for o in rows:
        promised = clock.parse_iso(o["promised_at"])
        o["late_minutes"] = max(0, int((now - promised).total_seconds() // 60))
        o["days_left"] = None
        if o["expires_at"] and o["status"] in READY:
            last = cal.local_date(clock.parse_iso(o["expires_at"]) - timedelta(seconds=1))
            o["days_left"] = cal.opening_days_left(today, last)
    return rows


def handover_record(db: Database, handover_id: str) -> dict[str, Any] | None:
    """A recorded hand-over, with its lines decoded."""
    rows = db.execute_returning_dicts("SELECT * FROM handovers WHERE id = ?", [handover_id])
    if not rows:
        return None
    rows[0]["lines"] = json.loads(rows[0]["lines"])
    return rows[0]


def return_record(db: Database, return_id: str) -> dict[str, Any] | None:
    """A recorded return, with its lines decoded."""
    rows = db.execute_returning_dicts("SELECT * FROM returns WHERE id = ?", [return_id])
    if not rows:
        return None
    rows[0]["lines"] = json.loads(rows[0]["lines"])
    return rows[0]


def require(db: Database, order_id: str) -> dict[str, Any]:
    order = get_order(db, order_id) if order_id else None
    if order is None:
        raise OrderError("unknown_order", "no such order in this store")
    return order


def require_manager(db: Database, manager_id: str | None) -> dict[str, Any]:
    member = staff.get_staff(db, manager_id) if manager_id else None
    if member is None or member["role"] != "manager":
        raise OrderError("manager_required", "only a manager may do this")
    return member
