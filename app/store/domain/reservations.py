"""In-store reservations: a shopper holds units on the shelf here for a while.

Holding writes a ``reserved`` stock movement per line (a negative delta), so every
kiosk page and staff screen shows the lower level at once; releasing (staff, the
shopper, or the expiry timer) writes the matching ``released`` movement. A reservation
collected at the till keeps its units out: they left with the shopper. Each change is
one ``BEGIN IMMEDIATE`` transaction with its movements, their outbox rows and the audit
entry, so the hub learns of it even if it was unreachable at the time, and two kiosks
can never hold the same last unit.

A reservation's id, counter code (``R-7KQ2``) and ticket QR are made and read in
app/store/domain/reservation_codes.py.

Domain functions take the database first and import nothing from Flask; refusals are
:class:`ReservationError` with a stable ``code``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod
from app.store.domain import account_actions, staff
from app.store.domain import reservation_codes as codes
from app.store.domain.orders import calendar
from app.store.domain.stock import levels, record_movement

HOLD_MINUTES_DEFAULT = 120
MAX_HOLD_MINUTES = 7 * 24 * 60  # a week: longer is a configuration error
MAX_LINES = 50
MAX_LINE_QTY = 99
MAX_SKU = 64
VIEWS = ("held", "closed_today")
LIST_LIMIT = 200


class ReservationError(ValueError):
    """A reservation action refused; ``code`` is stable for the UI and tests."""

    def __init__(self, code: str, message: str = "", **extra: Any) -> None:
        super().__init__(message or code)
        self.code = code
        self.extra = extra


# --- Reading -------------------------------------------------------------------------


_LINES_SQL = """
    SELECT l.reservation_id, l.sku, l.qty, l.movement_id,
           v.ean, v.size, v.colour_fr, v.colour_en,
           p.ref, p.brand, p.name_fr, p.name_en,
           c.slug AS category, c.name_fr AS category_fr, c.name_en AS category_en
    FROM reservation_lines l
    LEFT JOIN variants v ON v.sku = l.sku
    LEFT JOIN products p ON p.pk = v.product_pk
    LEFT JOIN categories c ON c.id = p.category_id
    WHERE l.reservation_id IN ({marks})
    ORDER BY c.position, c.slug, p.name_fr, v.size_order, l.sku"""


def _lines_for(db: Database, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Lines per reservation, in shelf order (category, product, size)."""
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = db.execute_returning_dicts(
        _LINES_SQL.format(marks=",".join("?" * len(ids))),
        ids,
    )
    for row in rows:
        rid = row.pop("reservation_id")
        for k in "ean size colour_fr colour_en ref brand category category_fr category_en".split():
            row[k] = row[k] or ""
        # A product gone from the catalog still shows something to look for.
        row["name_fr"] = row["name_fr"] or row["sku"]
        row["name_en"] = row["name_en"] or row["name_fr"]
        out[rid].append(row)
    return out


def _decorate(db: Database, row: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
    row["lines"] = lines
    row["units"] = sum(ln["qty"] for ln in lines)
    row["token"] = codes.ticket_token(db, row["id"])
    return row


def get(db: Database, reservation_id: str) -> dict[str, Any] | None:
    """One reservation with its lines (product, size, colour, category) and QR token."""
    rows = db.execute_returning_dicts(
        "SELECT * FROM reservations WHERE id = ?", [reservation_id or ""]
    )
    if not rows:
        return None
    return _decorate(db, rows[0], _lines_for(db, [rows[0]["id"]])[rows[0]["id"]])


def _local_midnight(db: Database, now: datetime) -> datetime:
    local = now.astimezone(calendar.timezone(db))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def list_reservations(
    db: Database, view: str = "held", *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """``held`` (soonest expiry first) or ``closed_today`` (latest first), with lines.

    Each row also has ``minutes_left`` (negative once overdue) and ``overdue``.
    """
    now = now or clock.utcnow()
    if view == "held":
        sql = "SELECT * FROM reservations WHERE status = 'held' ORDER BY expires_at, code LIMIT ?"
        params: list[Any] = [LIST_LIMIT]
    elif view == "closed_today":
        sql = """SELECT * FROM reservations WHERE closed_at >= ?
                 ORDER BY closed_at DESC, code LIMIT ?"""
        params = [clock.iso(_local_midnight(db, now)), LIST_LIMIT]
    else:
        raise ValueError(f"no list called {view!r}")
    rows = db.execute_returning_dicts(sql, params)
    lines = _lines_for(db, [r["id"] for r in rows])
    for r in rows:
        _decorate(db, r, lines[r["id"]])
        r["minutes_left"] = minutes_left(r["expires_at"], now)
        r["overdue"] = r["status"] == "held" and r["minutes_left"] <= 0
    return rows


def minutes_left(expires_at: str, now: datetime) -> int:
    """Whole minutes until ``expires_at``: rounded up while some time is left (never "0
    min" while still held), zero or negative once it is past."""
    left = (clock.parse_iso(expires_at) - now).total_seconds()
    return -int(-left // 60) if left > 0 else int(left // 60)


def count_held(db: Database) -> int:
    """How many reservations are waiting on the shelf (for the staff navigation)."""
    return db.execute("SELECT count(*) FROM reservations WHERE status = 'held'").fetchone()[0]


def counts(db: Database, now: datetime | None = None) -> dict[str, int]:
    """How many reservations each list holds."""
    since = clock.iso(_local_midnight(db, now or clock.utcnow()))
    closed = db.execute(
        "SELECT count(*) FROM reservations WHERE closed_at >= ?", [since]
    ).fetchone()[0]
    return {"held": count_held(db), "closed_today": closed}


def find_by_scan(db: Database, text: str) -> dict[str, Any] | None:
    """The reservation a scanned ticket QR, a typed code (``r-7kq2``) or an id names.

    None when nothing matches; a ``KR1.`` token with a bad MAC raises ``bad_token``.
    """
    try:
        found = codes.scanned(db, text)
    except codes.BadTicket as exc:
        raise ReservationError("bad_token", str(exc)) from exc
    if found is None:
        return None
    kind, value = found
    if kind == "id":
        return get(db, value)
    row = db.execute("SELECT id FROM reservations WHERE code = ?", [value]).fetchone()
    return get(db, row[0]) if row else None


# --- Writing -------------------------------------------------------------------------


def _check_lines(lines: list[tuple[str, int]]) -> dict[str, int]:
    """The wanted quantity per SKU (repeated SKUs add up); ``bad_lines`` when malformed."""
    if not isinstance(lines, (list, tuple)) or not lines or len(lines) > MAX_LINES:
        raise ReservationError("bad_lines", f"1 to {MAX_LINES} lines")
    wanted: dict[str, int] = {}
    for item in lines:
        try:
            sku, qty = item
        except (TypeError, ValueError) as exc:
            raise ReservationError("bad_lines", "each line is (sku, qty)") from exc
        if not isinstance(sku, str) or not sku or len(sku) > MAX_SKU:
            raise ReservationError("bad_lines", "a line needs a SKU")
        if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= MAX_LINE_QTY:
            raise ReservationError("bad_lines", f"quantities are 1 to {MAX_LINE_QTY}")
        wanted[sku] = min(wanted.get(sku, 0) + qty, MAX_LINE_QTY)
    return wanted


def create(
    db: Database,
    lines: list[tuple[str, int]],
    *,
    hold_minutes: int = HOLD_MINUTES_DEFAULT,
    cart_id: str | None = None,
    device: str = "",
    now: datetime | None = None,
    request_id: str | None = None,
    card_id: str | None = None,
) -> dict[str, Any]:
    """Hold what is available here of each ``(sku, qty)`` for ``hold_minutes``.

    One transaction: the levels are read under the write lock, so two kiosks never hold
    the same last unit. Returns :func:`get` plus ``unavailable``: ``{"sku", "wanted",
    "held"}`` for each line held short or not at all. ``nothing_available`` when no
    unit at all could be held (nothing is written then).

    ``request_id`` (a UUID the form was rendered with) makes it idempotent: a double tap
    on "reserve" sends it twice, and the second gets the first reservation back.
    ``card_id``: the recognised shopper's card; the reservation joins their account.
    """
    wanted = _check_lines(lines)
    if not isinstance(hold_minutes, int) or not 1 <= hold_minutes <= MAX_HOLD_MINUTES:
        raise ValueError(f"hold_minutes must be 1 to {MAX_HOLD_MINUTES}")
    if cart_id is not None and (not isinstance(cart_id, str) or len(cart_id) > 100):
        raise ReservationError("bad_lines", "a cart id is at most 100 characters")
    now = now or clock.utcnow()
    codes.ticket_key(db)  # made outside the transaction below, so its failure undoes nothing
    reservation_id = codes.id_for_request(request_id) if request_id else codes.new_id()
    unavailable = []
    with dbmod.write(db):
        if request_id and get(db, reservation_id) is not None:
            return {**get(db, reservation_id), "unavailable": [], "repeated": True}
        here = levels(db, list(wanted))
        held = {sku: min(qty, here.get(sku, 0)) for sku, qty in wanted.items()}
        for sku, qty in wanted.items():
            if held[sku] < qty:
                unavailable.append({"sku": sku, "wanted": qty, "held": held[sku]})
        if not any(held.values()):
            raise ReservationError(
                "nothing_available", "nothing of this is in stock here", unavailable=unavailable
            )
        code = codes.new_code(db)
        expires = clock.iso(now + timedelta(minutes=hold_minutes))
        db["reservations"].insert(
            {
                "id": reservation_id,
                "code": code,
                "status": "held",
                "cart_id": cart_id,
                "created_at": clock.iso(now),
                "expires_at": expires,
                "closed_at": None,
                "closed_by": None,
                "device": (device or "")[:120],
            }
        )
        for sku, qty in held.items():
            if qty <= 0:
                continue
            movement_id = record_movement(db, sku, -qty, "reserved", f"reservation {code}", "kiosk")
            db["reservation_lines"].insert(
                {
                    "reservation_id": reservation_id,
                    "sku": sku,
                    "qty": qty,
                    "movement_id": movement_id,
                }
            )
        account_actions.reservation_created(
            db, reservation_id, code, card_id, held, clock.iso(now), expires
        )
        if cart_id:
            # The cart brought by QR code is used: scanning it again here opens nothing
            # (what was not held stays in the shopper's session cart).
            from app.store.domain.carts import revoke_locally

            revoke_locally(db, cart_id)
        staff.audit(
            db,
            None,
            "reservation.created",
            device,
            {
                "reservation_id": reservation_id,
                "code": code,
                "cart_id": cart_id,
                "units": sum(held.values()),
                "hold_minutes": hold_minutes,
            },
        )
    result = get(db, reservation_id)
    assert result is not None
    return {**result, "unavailable": unavailable}


def _require_held(db: Database, reservation_id: str) -> dict[str, Any]:
    found = get(db, reservation_id)
    if found is None:
        raise ReservationError("not_found", "no such reservation in this store")
    if found["status"] != "held":
        raise ReservationError(
            "not_held", "this reservation is no longer held", status=found["status"]
        )
    return found


def _release_lines(db: Database, reservation: dict[str, Any], reason: str, actor: str) -> None:
    for ln in reservation["lines"]:
        record_movement(db, ln["sku"], ln["qty"], "released", reason, actor)


def release(
    db: Database,
    reservation_id: str,
    *,
    staff_id: str | None,
    device: str,
    reason: str = "",
) -> dict[str, Any]:
    """Put a held reservation's units back on sale (``released`` movements)."""
    reason = " ".join((reason or "").split())[:200]
    with dbmod.write(db):
        found = _require_held(db, reservation_id)
        label = f"reservation {found['code']} released" + (f": {reason}" if reason else "")
        _release_lines(db, found, label[:500], staff_id or "kiosk")
        stamp = clock.now_iso()
        db.execute(
            """UPDATE reservations SET status = 'released', closed_at = ?, closed_by = ?
               WHERE id = ?""",
            [stamp, staff_id, reservation_id],
        )
        account_actions.reservation_closed(db, reservation_id, "released", stamp)
        staff.audit(
            db,
            staff_id,
            "reservation.released",
            device,
            {"reservation_id": reservation_id, "code": found["code"], "reason": reason},
        )
    result = get(db, reservation_id)
    assert result is not None
    return result


def collect(db: Database, reservation_id: str, *, staff_id: str, device: str) -> dict[str, Any]:
    """Handed to the shopper at the till: collected, and the units stay out of stock."""
    with dbmod.write(db):
        found = _require_held(db, reservation_id)
        stamp = clock.now_iso()
        db.execute(
            """UPDATE reservations SET status = 'collected', closed_at = ?, closed_by = ?
               WHERE id = ?""",
            [stamp, staff_id, reservation_id],
        )
        account_actions.reservation_closed(db, reservation_id, "collected", stamp)
        staff.audit(
            db,
            staff_id,
            "reservation.collected",
            device,
            {"reservation_id": reservation_id, "code": found["code"], "units": found["units"]},
        )
    result = get(db, reservation_id)
    assert result is not None
    return result


def expire_due(db: Database, now: datetime | None = None) -> int:
    """Release every held reservation past its time; return how many expired.

    Each in its own transaction, re-checked under the write lock: a reservation
    collected meanwhile, or expired by another process, is left alone, so its units
    are released exactly once.
    """
    stamp = clock.iso(now or clock.utcnow())
    due = [
        r[0]
        for r in db.execute(
            "SELECT id FROM reservations WHERE status = 'held' AND expires_at <= ?", [stamp]
        ).fetchall()
    ]
    done = 0
    for reservation_id in due:
        with dbmod.write(db):
            changed = db.execute(
                """UPDATE reservations SET status = 'expired', closed_at = ?, closed_by = NULL
                   WHERE id = ? AND status = 'held' AND expires_at <= ?""",
                [stamp, reservation_id, stamp],
            ).rowcount
            if not changed:
                continue
            found = get(db, reservation_id)
            assert found is not None
            _release_lines(db, found, f"reservation {found['code']} expired", "expiry")
            account_actions.reservation_closed(db, reservation_id, "expired", stamp)
            staff.audit(
                db,
                None,
                "reservation.expired",
                "expiry",
                {"reservation_id": reservation_id, "code": found["code"]},
            )
        done += 1
    return done
