"""Head office's offers targeted to a segment (issue 14): "customers who bought running
shoes in the last 6 months" sees « -15 % sur le textile running » at the kiosk.

An offer has a title and a text (what the kiosk shows), the dates it runs (``starts_at``
inclusive, ``ends_at`` exclusive or open-ended) and a segment: customers who bought in
category C within the last N months (1 to 36). "Bought" is what the customer kept: units
collected and not returned, or lines of an order still open (:data:`KEPT`). The limit
is inclusive: an order placed exactly N calendar months ago counts, one second earlier
does not (:func:`months_before`).

Offers reach only customers who consented to personal suggestions: :func:`reach` counts
those (from ``customer_categories``, kept by app/hub/domain/personal.py), and
personal.py asks consent before it looks at any offer.
Validation (:func:`parse`) raises :class:`OfferError` naming the field, never a 500.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from app.core.clock import iso, parse_iso, utcnow
from app.core.text import text_problem
from app.hub import database as hdb
from app.hub.database import Db

MAX_TITLE = 80
MAX_TEXT = 300
MAX_MONTHS = 36
OPEN_STATUSES = ("placed", "preparing", "ready", "ready_partial", "partially_collected")
#: SQL: the order line ``l`` of order ``o`` is something the customer has (kept units, or
#: an open order's line not returned).
KEPT = (
    "(l.qty_collected > l.qty_returned OR (o.status IN "
    "('placed', 'preparing', 'ready', 'ready_partial', 'partially_collected') "
    "AND l.qty_returned = 0))"
)
FIELDS = ("title", "text", "category", "months", "starts", "ends")


class OfferError(ValueError):
    """A field of an offer is not valid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def months_before(now: datetime, months: int) -> datetime:
    """The same instant ``months`` calendar months earlier (31 May - 3 months is 28 or
    29 February, the month's last day when the day does not exist)."""
    total = now.year * 12 + (now.month - 1) - months
    year, month = divmod(total, 12)
    month += 1
    for day in (now.day, 30, 29, 28):
        try:
            return now.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _text(form: Mapping[str, Any], name: str, limit: int) -> str:
    value = " ".join(str(form.get(name) or "").split())
    if not value:
        raise OfferError(name, "empty")
    problem = text_problem(value, limit)  # too long, a control character, a surrogate
    if problem:
        raise OfferError(name, problem)
    return value


def _day(form: Mapping[str, Any], name: str, required: bool) -> date | None:
    value = str(form.get(name) or "").strip()
    if not value:
        if required:
            raise OfferError(name, "empty")
        return None
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError as exc:
        raise OfferError(name, "not a date") from exc


def parse(db: Db, form: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """A new offer from the console's form (dates as ``YYYY-MM-DD``, whole days in UTC:
    from the start of ``starts`` to the end of ``ends``); :class:`OfferError` otherwise."""
    title = _text(form, "title", MAX_TITLE)
    text = _text(form, "text", MAX_TEXT)
    slug = str(form.get("category") or "").strip()
    category = hdb.one(db, "SELECT id, slug FROM categories WHERE slug = ?", [slug[:80]])
    if category is None:
        raise OfferError("category", "unknown category")
    raw = str(form.get("months") or "").strip()
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_MONTHS:
        raise OfferError("months", "1 to 36")
    starts = _day(form, "starts", required=True)
    ends = _day(form, "ends", required=False)
    today = (now or utcnow()).astimezone(UTC).date()
    assert starts is not None
    if starts.year > today.year + 2:
        raise OfferError("starts", "too far")
    if ends is not None and ends < starts:
        raise OfferError("ends", "before the start")
    if ends is not None and ends < today:
        raise OfferError("ends", "in the past")
    return {
        "title": title,
        "body": text,
        "category_id": int(category["id"]),
        "category": category["slug"],
        "months": int(raw),
        "starts_at": iso(datetime.combine(starts, time(), UTC)),
        "ends_at": iso(datetime.combine(ends + timedelta(days=1), time(), UTC)) if ends else None,
    }


def create(db: Db, offer: dict[str, Any]) -> str:
    """Record a parsed offer; its id."""
    offer_id = "of-" + secrets.token_hex(6)
    with hdb.write(db, lock=None):
        hdb.insert(
            db,
            "offers",
            {
                "id": offer_id,
                "title": offer["title"],
                "body": offer["body"],
                "category_id": offer["category_id"],
                "months": offer["months"],
                "starts_at": offer["starts_at"],
                "ends_at": offer["ends_at"],
                "created_at": iso(utcnow()),
            },
        )
    return offer_id


def end(db: Db, offer_id: str, now: datetime | None = None) -> bool:
    """End an offer now (head office withdraws it); whether it was running or planned."""
    stamp = iso(now or utcnow())
    with hdb.write(db, lock=None):
        cur = hdb.execute(
            db,
            "UPDATE offers SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
            [stamp, offer_id[:40]],
        )
    return cur.rowcount > 0


def live(db: Db, now: datetime | None = None) -> list[dict[str, Any]]:
    """Offers running now (started, not ended nor withdrawn), oldest first."""
    stamp = iso(now or utcnow())
    return hdb.rows(
        db,
        "SELECT id, title, body, category_id, months, starts_at, ends_at FROM offers "
        "WHERE starts_at <= ? AND (ends_at IS NULL OR ends_at > ?) AND ended_at IS NULL "
        "ORDER BY starts_at, id",
        [stamp, stamp],
    )


def in_segment(
    offer: Mapping[str, Any], kept: list[tuple[int, str]], now: datetime | None = None
) -> bool:
    """Whether a customer whose kept lines are ``(category_id, placed_at)`` is in the
    offer's segment (bought in its category within its months, limit included)."""
    since = iso(months_before(now or utcnow(), int(offer["months"])))
    return any(cat == offer["category_id"] and placed >= since for cat, placed in kept)


def reach(db: Db, offer: Mapping[str, Any], now: datetime | None = None) -> int:
    """How many customers who consented are in the offer's segment, as of their last
    recompute (``customer_categories``: the daily ``kiosk hub personal refresh``, a
    consent given, an order collected): one index range, whatever the orders' number."""
    since = iso(months_before(now or utcnow(), int(offer["months"])))
    return int(
        hdb.scalar(
            db,
            "SELECT count(*) FROM customer_categories cc "
            "JOIN customers c ON c.id = cc.customer_id AND c.consent_personal = 1 "
            "WHERE cc.category_id = ? AND cc.last_at >= ?",
            [offer["category_id"], since],
            0,
        )
    )


def state(offer: Mapping[str, Any], now: datetime | None = None) -> str:
    """``planned``, ``running``, ``ended`` (its end date passed) or ``withdrawn``."""
    stamp = iso(now or utcnow())
    if offer.get("ended_at"):
        return "withdrawn"
    if offer["ends_at"] is not None and offer["ends_at"] <= stamp:
        return "ended"
    return "planned" if offer["starts_at"] > stamp else "running"


def listing(db: Db, now: datetime | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The newest offers with their category, state and, running or planned, their reach
    (customers who consented, in the segment today; None for the others)."""
    when = now or utcnow()
    found = hdb.rows(
        db,
        "SELECT f.id, f.title, f.body, f.category_id, f.months, f.starts_at, f.ends_at, "
        "f.created_at, f.ended_at, c.slug, c.name_fr FROM offers f "
        "JOIN categories c ON c.id = f.category_id ORDER BY f.created_at DESC, f.id LIMIT ?",
        [limit],
    )
    for offer in found:
        offer["state"] = state(offer, when)
        live_or_planned = offer["state"] in ("running", "planned")
        offer["reach"] = reach(db, offer, when) if live_or_planned else None
        # The last day it runs (ends_at is the start of the next one).
        offer["last_day_at"] = (
            iso(parse_iso(offer["ends_at"]) - timedelta(days=1)) if offer["ends_at"] else None
        )
    return found


def categories(db: Db) -> list[dict[str, Any]]:
    """The categories an offer may target (its segment's choice): slug and French name,
    in the catalog's order."""
    return hdb.rows(db, "SELECT slug, name_fr FROM categories ORDER BY position, slug")
