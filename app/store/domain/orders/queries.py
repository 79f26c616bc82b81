"""Click-and-collect in the store: web orders to prepare, hand over and take back.

Orders arrive from the hub's change feed (:func:`apply_order_changes`). Every staff
action is one write transaction (``BEGIN IMMEDIATE``) that changes the order, appends
to the audit log and queues what the hub must learn in the outbox, so nothing done at
the counter is lost when the hub is unreachable. The check that decides an action is
made inside that same transaction: two tablets acting on one order at the same second
are serialised by SQLite's write lock, and the second one sees the first one's work.

Domain functions take the database first and import nothing from Flask; refusals are
:class:`OrderError` with a stable ``code`` the UI turns into a sentence.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from app.core import catalog, clock, tokens
from app.core import db as dbmod
from app.core.secrets import verify_secret
from app.store.domain import staff as staffauth
from app.store.domain.stock import record_movement, self_store_id

PAGE_SIZE = 25  # a tablet screen shows ~8 rows; rendering is the cost, not the query
MAX_CODE_FAILURES = 5
CODE_LENGTH = 6
DEFAULT_TIMEZONE = "Europe/Paris"
READY = ("ready", "ready_partial", "partially_collected")  # can be handed over / expire
# Statuses in order: an order never moves backwards (docs/protocol.md).
RANK = {
    "placed": 0,
    "preparing": 1,
    "ready": 2,
    "ready_partial": 2,
    "partially_collected": 3,
    "collected": 4,
    "expired": 4,
    "cancelled": 5,
}
VIEWS = ("to_prepare", "preparing", "ready", "collected_today", "expired")
REFUNDS = ("original_payment", "store_credit")
CONDITIONS = ("resellable", "damaged")
MAX_RETURN_QTY = 999  # per line, as the hub accepts
COLLECTORS = ("customer", "proxy")
METHODS = ("qr", "code", "override")
_NUMBER = re.compile(r"(?:CC-?)?(\d{8})", re.IGNORECASE)


class OrderError(ValueError):
    """An order action refused; ``code`` is stable for the UI and tests."""

    def __init__(self, code: str, message: str = "", **extra: Any) -> None:
        super().__init__(message or code)
        self.code = code
        self.extra = extra


# --- Opening days and expiry -------------------------------------------------------


def _tz(db: Database) -> ZoneInfo:
    return ZoneInfo(dbmod.get_meta(db, "orders.timezone", DEFAULT_TIMEZONE) or DEFAULT_TIMEZONE)


def opening_weekdays(db: Database) -> set[int]:
    """ISO weekdays the store opens (Monday = 1); Monday to Saturday by default."""
    raw = dbmod.get_meta(db, "orders.opening_weekdays", "1,2,3,4,5,6") or ""
    return {int(d) for d in raw.split(",") if d.strip().isdigit()}


def set_opening_weekdays(db: Database, days: set[int]) -> None:
    """Set the weekly opening days (ISO weekdays)."""
    with dbmod.write(db):
        dbmod.set_meta(db, "orders.opening_weekdays", ",".join(str(d) for d in sorted(days)))


def add_closing_day(db: Database, day: date, reason: str = "") -> None:
    """Close the store on one date (a public holiday): it does not count for expiry."""
    with dbmod.write(db):
        db.execute(
            "INSERT OR REPLACE INTO closing_days (day, reason) VALUES (?, ?)",
            [day.isoformat(), reason],
        )


class _Calendar:
    """Which local dates the store opens, read once per operation."""

    def __init__(self, db: Database) -> None:
        self.tz = _tz(db)
        self.weekdays = opening_weekdays(db)
        self.closed = {r[0] for r in db.execute("SELECT day FROM closing_days").fetchall()}

    def is_open(self, day: date) -> bool:
        return day.isoweekday() in self.weekdays and day.isoformat() not in self.closed

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.tz)

    def last_day(self, ready_at: datetime, days: int) -> date:
        """The last opening day to collect: ``days`` opening days after the ready day."""
        day = self.local_date(ready_at)
        counted = 0
        for _ in range(3660):  # a store closed for ten years is a configuration error
            if counted >= days:
                break
            day += timedelta(days=1)
            if self.is_open(day):
                counted += 1
        return day

    def expires_at(self, ready_at: datetime, days: int) -> datetime:
        """Expiry: the local midnight that ends the last opening day to collect."""
        return self.midnight(self.last_day(ready_at, days) + timedelta(days=1))

    def opening_days_left(self, today: date, last: date) -> int:
        """Opening days from ``today`` to ``last``, both included."""
        n, day = 0, today
        while day <= last and n < 400:
            n += int(self.is_open(day))
            day += timedelta(days=1)
        return n


def expiry_for(db: Database, ready_at: datetime, days: int) -> datetime:
    """When an order ready at ``ready_at`` expires (closing days skipped)."""
    return _Calendar(db).expires_at(ready_at, days)


# --- Reading -----------------------------------------------------------------------


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


def _view_sql(view: str, cal: _Calendar, now: datetime) -> tuple[str, list[Any]]:
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
    cal = _Calendar(db)
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
    cal = _Calendar(db)
    where, params = _view_sql(view, cal, now)
    rows = db.execute_returning_dicts(
        f"{_ROWS} WHERE {where} LIMIT ? OFFSET ?",  # noqa: S608
        [*params, max(1, min(limit, 200)), max(0, offset)],
    )
    return _annotate(db, rows, now, cal)


def _annotate(
    db: Database, rows: list[dict[str, Any]], now: datetime, cal: _Calendar | None = None
) -> list[dict[str, Any]]:
    """``late_minutes`` and ``days_left`` on list rows (search results alike)."""
    cal = cal or _Calendar(db)
    today = cal.local_date(now)
    for o in rows:
        promised = clock.parse_iso(o["promised_at"])
        o["late_minutes"] = max(0, int((now - promised).total_seconds() // 60))
        o["days_left"] = None
        if o["expires_at"] and o["status"] in READY:
            last = cal.local_date(clock.parse_iso(o["expires_at"]) - timedelta(seconds=1))
            o["days_left"] = cal.opening_days_left(today, last)
    return rows


def picking_list(db: Database, order_id: str, lang: str = "fr") -> list[dict[str, Any]]:
    """The order's lines grouped by category (in the store's category order)."""
    order = _require(db, order_id)
    names = {
        r[0]: r[1]
        for r in db.execute(
            f"SELECT slug, {'name_en' if lang == 'en' else 'name_fr'} FROM categories"  # noqa: S608
        ).fetchall()
    }
    positions = {r[0]: r[1] for r in db.execute("SELECT slug, position FROM categories").fetchall()}
    groups: dict[str, dict[str, Any]] = {}
    for line in order["lines"]:
        slug = line["category_slug"]
        g = groups.setdefault(slug, {"slug": slug, "name": names.get(slug, slug), "lines": []})
        g["lines"].append(line)
    return sorted(groups.values(), key=lambda g: (positions.get(g["slug"], 999), g["name"]))


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


# --- Writing helpers ---------------------------------------------------------------


def _require(db: Database, order_id: str) -> dict[str, Any]:
    order = get_order(db, order_id) if order_id else None
    if order is None:
        raise OrderError("unknown_order", "no such order in this store")
    return order


def _require_manager(db: Database, manager_id: str | None) -> dict[str, Any]:
    member = staffauth.get_staff(db, manager_id) if manager_id else None
    if member is None or member["role"] != "manager":
        raise OrderError("manager_required", "only a manager may do this")
    return member


def _queue(db: Database, kind: str, payload: dict[str, Any], order_id: str | None) -> str:
    """Append a transaction for the hub (inside the caller's transaction)."""
    tx_id = str(uuid.uuid4())
    now = clock.now_iso()
    db["outbox"].insert(
        {
            "id": tx_id,
            "type": kind,
            "occurred_at": now,
            "payload": json.dumps(payload, separators=(",", ":")),
            "created_at": now,
            "order_id": order_id,
        }
    )
    return tx_id


def _touch(db: Database, order_id: str, **fields: Any) -> None:
    fields["updated_at"] = clock.now_iso()
    sets = ", ".join(f"{k} = ?" for k in fields)
    db.execute(
        f"UPDATE orders SET {sets} WHERE id = ?",  # noqa: S608
        [*fields.values(), order_id],
    )


# --- Preparing ---------------------------------------------------------------------


def _preparable(order: dict[str, Any]) -> None:
    if order["status"] not in ("placed", "preparing"):
        raise OrderError(
            "invalid_state", "this order is not being prepared", status=order["status"]
        )


def start_preparing(db: Database, order_id: str, staff_id: str, device: str = "") -> dict:
    """Take an order to prepare (placed -> preparing; store-local, nothing sent)."""
    with dbmod.write(db):
        order = _require(db, order_id)
        _preparable(order)
        if order["status"] == "placed":
            _touch(db, order_id, status="preparing")
            staffauth.audit(db, staff_id, "order.preparing", device, {"order_id": order_id})
    return _require(db, order_id)


def scan_item(db: Database, order_id: str, code: str, staff_id: str, device: str = "") -> dict:
    """Count one scanned unit into the order: refuse a product not ordered or one too many.

    Returns ``{"line": …, "picked": n, "qty": n, "complete": bool}``.
    """
    code = (code or "").strip()[:64]
    if not code:
        raise OrderError("empty_code", "nothing was scanned")
    variant = catalog.find_variant(db, code)
    if variant is None:
        raise OrderError("unknown_item", "no product has this barcode", scanned=code)
    wrong = None
    with dbmod.write(db):
        order = _require(db, order_id)
        _preparable(order)
        candidates = [ln for ln in order["lines"] if ln["sku"] == variant["sku"]]
        if not candidates:
            staffauth.audit(
                db,
                staff_id,
                "order.scan_wrong_item",
                device,
                {"order_id": order_id, "sku": variant["sku"]},
            )
            wrong = OrderError("wrong_item", "this product is not in the order", sku=variant["sku"])
        else:
            line = next((ln for ln in candidates if ln["qty_picked"] < ln["qty"]), None)
            if line is None:
                raise OrderError(
                    "too_many", "every unit of this product is already picked", sku=variant["sku"]
                )
            picked = line["qty_picked"] + 1
            db.execute(
                "UPDATE order_lines SET qty_picked = ?, short = 0 WHERE order_id = ? AND line = ?",
                [picked, order_id, line["line"]],
            )
            if order["status"] == "placed":
                _touch(db, order_id, status="preparing")
            staffauth.audit(
                db,
                staff_id,
                "order.scan",
                device,
                {"order_id": order_id, "line": line["line"], "picked": picked},
            )
    if wrong is not None:
        raise wrong  # after the commit, so the audit entry of the refused scan stays
    line["qty_picked"] = picked
    return {"line": line, "picked": picked, "qty": line["qty"], "complete": picked == line["qty"]}


def mark_short(db: Database, order_id: str, line: int, staff_id: str, device: str = "") -> None:
    """Say a line cannot be completed: the order will be ready with what was picked."""
    with dbmod.write(db):
        order = _require(db, order_id)
        _preparable(order)
        found = next((ln for ln in order["lines"] if ln["line"] == line), None)
        if found is None:
            raise OrderError("unknown_line", "no such line in this order")
        if found["qty_picked"] >= found["qty"]:
            raise OrderError("line_complete", "this line is complete")
        db.execute(
            "UPDATE order_lines SET short = 1 WHERE order_id = ? AND line = ?", [order_id, line]
        )
        if order["status"] == "placed":
            _touch(db, order_id, status="preparing")
        staffauth.audit(db, staff_id, "order.short", device, {"order_id": order_id, "line": line})


def mark_ready(
    db: Database, order_id: str, shelf_slot: str, staff_id: str, device: str = ""
) -> dict[str, Any]:
    """Every line picked or marked short: the order is ready on ``shelf_slot``.

    Queues ``order.ready`` (the hub tells the customer) in the same transaction.
    """
    slot = " ".join((shelf_slot or "").split())
    if not slot or len(slot) > 20:
        raise OrderError("shelf_slot", "a shelf slot of 1 to 20 characters is needed")
    now = clock.utcnow()
    with dbmod.write(db):
        order = _require(db, order_id)
        _preparable(order)
        open_lines = [
            ln["line"] for ln in order["lines"] if ln["qty_picked"] < ln["qty"] and not ln["short"]
        ]
        if open_lines:
            raise OrderError(
                "incomplete", "some lines are neither picked nor short", lines=open_lines
            )
        if not any(ln["qty_picked"] for ln in order["lines"]):
            raise OrderError("nothing_picked", "nothing was picked")
        full = all(ln["qty_picked"] == ln["qty"] for ln in order["lines"])
        status = "ready" if full else "ready_partial"
        db.execute("UPDATE order_lines SET qty_ready = qty_picked WHERE order_id = ?", [order_id])
        expires = _Calendar(db).expires_at(now, order["expiry_days"])
        _touch(
            db,
            order_id,
            status=status,
            shelf_slot=slot,
            ready_at=clock.iso(now),
            expires_at=clock.iso(expires),
            reminder_queued=0,
        )
        _queue(
            db,
            "order.ready",
            {
                "order_id": order_id,
                "lines": [
                    {"line": ln["line"], "qty_ready": ln["qty_picked"]} for ln in order["lines"]
                ],
                "shelf_slot": slot,
                "staff": staff_id,
            },
            order_id,
        )
        staffauth.audit(
            db,
            staff_id,
            "order.ready",
            device,
            {"order_id": order_id, "status": status, "shelf_slot": slot},
        )
    return _require(db, order_id)


# --- Verifying the collector -------------------------------------------------------


def hub_keys(db: Database) -> dict[str, bytes]:
    """The hub's public keys by key id (from the change feed)."""
    keys = {}
    for kid, public in db.execute("SELECT kid, public_key FROM hub_keys").fetchall():
        try:
            keys[kid] = tokens.public_key_from_b64(public)
        except ValueError:
            continue
    return keys


def _token_payload(db: Database, token: str, now: datetime | None, allow_expired: bool) -> dict:
    keys = hub_keys(db)
    if not keys:
        raise OrderError("no_hub_key", "this store has not received the hub's key yet")
    stamp = (now or clock.utcnow()).timestamp()
    try:
        return tokens.verify(keys, token.strip(), "pickup", now=stamp)
    except tokens.TokenError as exc:
        if exc.code != "expired" or not allow_expired:
            raise OrderError(exc.code, exc.message) from exc
    # A return may come after the pickup QR expired: still check the signature.
    _, payload, _ = tokens._parse(token.strip())
    try:
        return tokens.verify(keys, token.strip(), "pickup", now=payload["exp"] - 1)
    except (tokens.TokenError, TypeError) as exc:
        raise OrderError(getattr(exc, "code", "malformed"), str(exc)) from exc


def verify_token(
    db: Database, token: str, now: datetime | None = None, *, allow_expired: bool = False
) -> dict[str, Any]:
    """The order a pickup QR is for, checked offline with the hub's key.

    Refused: ``malformed``, ``bad_signature``, ``expired``, ``unknown_key``, ``wrong_kind``,
    ``wrong_store`` (a QR for another shop), ``unknown_order``.
    """
    payload = _token_payload(db, token, now, allow_expired)
    if payload.get("s") != self_store_id(db):
        raise OrderError("wrong_store", "this QR code is for another store")
    order = get_order(db, str(payload.get("o") or ""))
    if order is None:
        raise OrderError("unknown_order", "this store has no such order")
    return order


def looks_like_token(code: str) -> bool:
    return (code or "").strip().startswith(tokens.PREFIX + ".")


def verify_code(
    db: Database, number: str, code: str, staff_id: str, device: str = ""
) -> dict[str, Any]:
    """The order if ``code`` is its pickup code; 5 wrong codes lock it for a manager.

    Refused: ``unknown_order``, ``code_format``, ``code_locked``, ``wrong_code``
    (with ``attempts_left``). A refusal's count and audit entry are committed.
    """
    code = (code or "").strip()
    order = find_by_number(db, number) if normalise_number(number) else get_order(db, number)
    if order is None:
        raise OrderError("unknown_order", "no order with this number")
    if not (len(code) == CODE_LENGTH and code.isascii() and code.isdigit()):
        raise OrderError("code_format", "a pickup code is 6 digits")
    order_id = order["id"]
    error: OrderError
    with dbmod.write(db):
        row = db.execute(
            "SELECT code_failures, code_locked, pickup_code_hash FROM orders WHERE id = ?",
            [order_id],
        ).fetchone()
        failures, locked, stored = row
        if locked:
            staffauth.audit(
                db, staff_id, "order.code_refused_locked", device, {"order_id": order_id}
            )
            error = OrderError("code_locked", "too many wrong codes: a manager must unlock")
        elif stored and verify_secret(code, stored):
            _touch(db, order_id, code_failures=0)
            staffauth.audit(db, staff_id, "order.code_ok", device, {"order_id": order_id})
            return _require(db, order_id)
        else:
            failures += 1
            if failures >= MAX_CODE_FAILURES:
                _touch(db, order_id, code_failures=failures, code_locked=1)
                staffauth.audit(db, staff_id, "order.code_locked", device, {"order_id": order_id})
                error = OrderError("code_locked", "too many wrong codes: a manager must unlock")
            else:
                _touch(db, order_id, code_failures=failures)
                staffauth.audit(
                    db,
                    staff_id,
                    "order.code_wrong",
                    device,
                    {"order_id": order_id, "failures": failures},
                )
                error = OrderError(
                    "wrong_code", "wrong pickup code", attempts_left=MAX_CODE_FAILURES - failures
                )
    raise error


def unlock_code(db: Database, order_id: str, manager_id: str, device: str = "") -> None:
    """A manager lifts a pickup-code lockout."""
    with dbmod.write(db):
        _require_manager(db, manager_id)
        _require(db, order_id)
        _touch(db, order_id, code_failures=0, code_locked=0)
        staffauth.audit(db, manager_id, "order.code_unlocked", device, {"order_id": order_id})


# --- Hand-over ---------------------------------------------------------------------


def handover(
    db: Database,
    order_id: str,
    *,
    staff_id: str,
    method: str,
    lines: dict[int, int] | None = None,
    collector: str = "customer",
    collector_name: str = "",
    manager_id: str | None = None,
    override_reason: str = "",
    handover_id: str | None = None,
    device: str = "",
) -> dict[str, Any]:
    """Give the customer (or their named proxy) what is ready: all of it or ``lines``.

    ``lines`` maps line number to quantity (0 = not now). The check (ready, not handed
    over already) and the write are one ``BEGIN IMMEDIATE`` transaction, so the same
    units can never be handed over twice. A repeated ``handover_id`` (a double tap)
    returns the first hand-over with ``repeat=True`` and changes nothing.
    """
    if method not in METHODS:
        raise OrderError("invalid_method", "unknown verification method")
    if collector not in COLLECTORS:
        raise OrderError("invalid_collector", "customer or proxy")
    collector_name = " ".join((collector_name or "").split())
    if collector == "proxy" and not (1 <= len(collector_name) <= 80):
        raise OrderError("proxy_name", "the proxy's name (1 to 80 characters) is needed")
    if collector == "customer":
        collector_name = ""
    override_reason = " ".join((override_reason or "").split())
    if method == "override" and not (1 <= len(override_reason) <= 500):
        raise OrderError("override_reason", "a reason (1 to 500 characters) is needed")
    handover_id = handover_id or str(uuid.uuid4())
    try:
        handover_id = str(uuid.UUID(handover_id))
    except ValueError as exc:
        raise OrderError("invalid_id", "bad hand-over id") from exc
    now = clock.now_iso()
    with dbmod.write(db):
        existing = handover_record(db, handover_id)
        if existing is not None:
            if existing["order_id"] != order_id:
                raise OrderError("invalid_id", "this hand-over id belongs to another order")
            return {**existing, "repeat": True}
        if method == "override":
            _require_manager(db, manager_id)
        order = _require(db, order_id)
        if order["status"] in ("collected",):
            raise OrderError("already_collected", "this order was already handed over")
        if order["status"] not in READY:
            raise OrderError("invalid_state", "this order is not ready", status=order["status"])
        if method == "code" and order["code_locked"]:
            raise OrderError("code_locked", "too many wrong codes: a manager must unlock")
        remaining = {ln["line"]: ln["qty_ready"] - ln["qty_collected"] for ln in order["lines"]}
        if lines is None:
            chosen = {line: qty for line, qty in remaining.items() if qty > 0}
        else:
            chosen = {}
            for line, qty in lines.items():
                if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
                    raise OrderError("invalid_qty", "quantities are whole numbers from 0")
                if line not in remaining:
                    raise OrderError("unknown_line", "no such line in this order", line=line)
                if qty > remaining[line]:
                    raise OrderError(
                        "qty_out_of_range",
                        "more than is left to hand over",
                        line=line,
                        left=remaining[line],
                    )
                if qty:
                    chosen[line] = qty
        if not chosen:
            if not any(remaining.values()):
                raise OrderError("already_collected", "this order was already handed over")
            raise OrderError("nothing_chosen", "choose at least one item")
        for line, qty in chosen.items():
            db.execute(
                """UPDATE order_lines SET qty_collected = qty_collected + ?
                   WHERE order_id = ? AND line = ?""",
                [qty, order_id, line],
            )
        left = sum(remaining.values()) - sum(chosen.values())
        status = "collected" if left == 0 else "partially_collected"
        _touch(db, order_id, status=status, collected_at=now)
        line_list = [{"line": line, "qty": qty} for line, qty in sorted(chosen.items())]
        record = {
            "id": handover_id,
            "order_id": order_id,
            "at": now,
            "staff_id": staff_id,
            "manager_id": manager_id if method == "override" else None,
            "collector": collector,
            "collector_name": collector_name,
            "method": method,
            "override_reason": override_reason if method == "override" else "",
            "lines": json.dumps(line_list),
        }
        db["handovers"].insert(record)
        payload: dict[str, Any] = {
            "handover_id": handover_id,
            "order_id": order_id,
            "lines": line_list,
            "collector": collector,
            "method": method,
            "staff": staff_id,
        }
        if collector == "proxy":
            payload["collector_name"] = collector_name
        if method == "override":
            payload["override_reason"] = override_reason
            payload["manager"] = manager_id
        _queue(db, "order.handover", payload, order_id)
        staffauth.audit(
            db,
            staff_id,
            "order.handover",
            device,
            {
                "order_id": order_id,
                "handover_id": handover_id,
                "method": method,
                "collector": collector,
                "status": status,
                "manager": record["manager_id"],
            },
        )
    return {**record, "lines": line_list, "status": status, "repeat": False}


# --- Expiry ------------------------------------------------------------------------


def expire_due(db: Database, now: datetime | None = None, device: str = "expiry") -> dict:
    """Expire what is past its last day and queue reminders due today.

    Each expiry is one transaction: the order expired, ``order.expired`` queued, and a
    ``released`` stock movement per line (units ready and not collected), so the kiosk
    shows them available at once. A reminder (``order.reminder``) is queued once, on
    the last day to collect.
    """
    now = now or clock.utcnow()
    stamp = clock.iso(now)
    cal = _Calendar(db)
    expired, reminded = [], []
    due = [
        r[0]
        for r in db.execute(
            """SELECT id FROM orders WHERE expires_at IS NOT NULL AND expires_at <= ?
               AND status IN ('ready', 'ready_partial', 'partially_collected')""",
            [stamp],
        ).fetchall()
    ]
    for order_id in due:
        with dbmod.write(db):
            order = get_order(db, order_id)
            # Re-checked under the write lock: a hand-over may have just happened.
            if order is None or order["status"] not in READY or order["expires_at"] > stamp:
                continue
            _touch(db, order_id, status="expired")
            _queue(db, "order.expired", {"order_id": order_id}, order_id)
            for ln in order["lines"]:
                back = ln["qty_ready"] - ln["qty_collected"]
                if back > 0:
                    reason = f"order {order['number']} expired"
                    record_movement(db, ln["sku"], back, "released", reason, "expiry")
            staffauth.audit(db, None, "order.expired", device, {"order_id": order_id})
        expired.append(order_id)
    horizon = clock.iso(now + timedelta(days=2))
    candidates = db.execute(
        """SELECT id, expires_at FROM orders WHERE reminder_queued = 0
           AND expires_at IS NOT NULL AND expires_at > ? AND expires_at <= ?
           AND status IN ('ready', 'ready_partial', 'partially_collected')""",
        [stamp, horizon],
    ).fetchall()
    today = cal.local_date(now)
    for order_id, expires_at in candidates:
        last = cal.local_date(clock.parse_iso(expires_at) - timedelta(seconds=1))
        if today < last:
            continue
        with dbmod.write(db):
            changed = db.execute(
                "UPDATE orders SET reminder_queued = 1 WHERE id = ? AND reminder_queued = 0",
                [order_id],
            ).rowcount
            if changed:
                _queue(
                    db, "order.reminder", {"order_id": order_id, "expires_at": expires_at}, order_id
                )
        if changed:
            reminded.append(order_id)
    return {"expired": expired, "reminded": reminded}


# --- Returns -----------------------------------------------------------------------


def find_for_return(
    db: Database, *, token: str = "", number: str = "", email_or_name: str = ""
) -> dict[str, Any]:
    """The order to take a return for: its pickup QR, or its number and the customer's
    e-mail or last name. Refused: ``unknown_order``, ``details_mismatch`` and QR errors."""
    if token:
        return verify_token(db, token, allow_expired=True)
    order = find_by_number(db, number)
    if order is None:
        raise OrderError("unknown_order", "no order with this number")
    given = customer_key(email_or_name)
    names = customer_key(order["customer_name"]).split()
    last_names = {names[-1], " ".join(names[1:])} if names else set()
    if not given or (given != order["customer_email"].casefold() and given not in last_names):
        raise OrderError("details_mismatch", "the e-mail or last name does not match")
    return order


def record_return(
    db: Database,
    order_id: str | None,
    lines: list[dict[str, Any]],
    *,
    reason: str,
    refund: str,
    staff_id: str,
    manager_id: str | None = None,
    return_id: str | None = None,
    device: str = "",
) -> dict[str, Any]:
    """Take goods back: at most collected minus already returned per line.

    ``lines``: ``{"line", "qty", "condition"}`` (with an order) or ``{"code", "qty",
    "condition"}`` (no order found: manager only). Resellable units go back to stock at
    once (``returned`` movement); damaged ones do not. ``order.return`` asks the hub for
    the refund to the original payment or for store credit.
    """
    reason = " ".join((reason or "").split())
    if not (1 <= len(reason) <= 500):
        raise OrderError("reason", "a reason (1 to 500 characters) is needed")
    if refund not in REFUNDS:
        raise OrderError("refund", "refund to the original payment or store credit")
    try:
        return_id = str(uuid.UUID(return_id)) if return_id else str(uuid.uuid4())
    except ValueError as exc:
        raise OrderError("invalid_id", "bad return id") from exc
    with dbmod.write(db):
        existing = return_record(db, return_id)
        if existing is not None:
            if existing.get("order_id") != order_id:
                raise OrderError("invalid_id", "this return id belongs to another return")
            return {**existing, "repeat": True}
        order = None
        if order_id is None:
            _require_manager(db, manager_id)
        else:
            order = _require(db, order_id)
        chosen = []
        for item in lines:
            qty, condition = item.get("qty"), item.get("condition")
            if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
                raise OrderError("invalid_qty", "quantities are whole numbers from 0")
            if qty > MAX_RETURN_QTY:
                # The hub refuses more: never queue a stock movement it would accept
                # for a return it refuses.
                raise OrderError(
                    "qty_out_of_range", f"at most {MAX_RETURN_QTY} per line", left=MAX_RETURN_QTY
                )
            if condition not in CONDITIONS:
                raise OrderError("condition", "resellable or damaged")
            if qty == 0:
                continue
            if order is not None:
                ln = next((x for x in order["lines"] if x["line"] == item.get("line")), None)
                if ln is None:
                    raise OrderError("unknown_line", "no such line in this order")
                left = ln["qty_collected"] - ln["qty_returned"]
                if qty > left:
                    raise OrderError(
                        "qty_out_of_range",
                        "more than was collected and kept",
                        line=ln["line"],
                        left=left,
                    )
                ln["qty_returned"] += qty  # two entries for one line add up
                chosen.append(
                    {
                        "line": ln["line"],
                        "sku": ln["sku"],
                        "qty": qty,
                        "condition": condition,
                        "name": ln["name_fr"],
                    }
                )
            else:
                variant = catalog.find_variant(db, str(item.get("code") or "").strip())
                if variant is None:
                    raise OrderError("unknown_item", "no product has this barcode")
                chosen.append(
                    {
                        "line": None,
                        "sku": variant["sku"],
                        "qty": qty,
                        "condition": condition,
                        "name": variant["sku"],
                    }
                )
        if not chosen:
            raise OrderError("nothing_chosen", "choose at least one item")
        for c in chosen:
            if order is not None:
                db.execute(
                    """UPDATE order_lines SET qty_returned = qty_returned + ?
                       WHERE order_id = ? AND line = ?""",
                    [c["qty"], order_id, c["line"]],
                )
            if c["condition"] == "resellable":
                label = order["number"] if order else "no order"
                record_movement(db, c["sku"], c["qty"], "returned", f"return {label}", staff_id)
        if order is not None:
            _touch(db, order_id)
        record = {
            "id": return_id,
            "order_id": order_id,
            "at": clock.now_iso(),
            "staff_id": staff_id,
            "manager_id": manager_id,
            "reason": reason,
            "refund": refund,
            "lines": json.dumps(chosen),
        }
        db["returns"].insert(record)
        payload = {
            "return_id": return_id,
            "order_id": order_id,
            "lines": [{k: c[k] for k in ("line", "sku", "qty", "condition")} for c in chosen],
            "reason": reason,
            "refund": refund,
            "staff": staff_id,
        }
        if manager_id:
            payload["manager"] = manager_id
        _queue(db, "order.return", payload, order_id)
        staffauth.audit(
            db,
            staff_id,
            "order.return",
            device,
            {"order_id": order_id, "return_id": return_id, "refund": refund, "manager": manager_id},
        )
    return {**record, "lines": chosen, "repeat": False}


# --- The hub's change feed -----------------------------------------------------------

_LINE_TEXT = (
    "sku",
    "ean",
    "name_fr",
    "name_en",
    "size",
    "colour_fr",
    "colour_en",
    "category_slug",
    "qty",
    "price_cents",
)


def _pending_for(db: Database, order_id: str) -> bool:
    return (
        db.execute(
            """SELECT 1 FROM outbox WHERE order_id = ? AND acked_at IS NULL
               AND parked_reason IS NULL LIMIT 1""",
            [order_id],
        ).fetchone()
        is not None
    )


def apply_order_changes(db: Database, changes: list[dict], own: str | None) -> int:
    """Upsert ``order`` changes (feed applier; inside the page's transaction).

    An order never moves backwards here; while the store has transactions about it the
    hub has not acknowledged, the store keeps its own status and counters and takes
    only the other fields (names, promised time, code hash…).
    """
    cal: _Calendar | None = None
    now = clock.utcnow()
    stamp = clock.iso(now)
    for change in changes:
        d = change["data"]
        if own and d.get("store_id") and d["store_id"] != own:
            continue  # not ours: the hub should not send it, never apply it
        order_id = d["id"]
        status = d["status"]
        if status not in RANK:
            raise ValueError(f"unknown order status {status!r}")
        local = get_order(db, order_id)
        keep_local = local is not None and (
            _pending_for(db, order_id) or RANK[status] < RANK[local["status"]]
        )
        fields = {
            "number": d["number"],
            "customer_name": d.get("customer_name") or "",
            "customer_key": customer_key(d.get("customer_name") or ""),
            "customer_email": (d.get("customer_email") or "").casefold(),
            "customer_initials": d.get("customer_initials") or "",
            "placed_at": d["placed_at"],
            "promised_at": d.get("promised_at") or d["placed_at"],
            "expiry_days": int(d.get("expiry_days") or 7),
            "pickup_code_hash": d.get("pickup_code_hash") or "",
            "revision": int(d.get("revision") or 0),
            "updated_at": stamp,
        }
        new_status = local["status"] if keep_local else status
        if not keep_local:
            fields["status"] = status
            if d.get("shelf_slot"):
                fields["shelf_slot"] = str(d["shelf_slot"])[:20]
        ready_at = local["ready_at"] if local else None
        if new_status in READY and not ready_at:
            ready_at = d.get("ready_at") or stamp
            fields["ready_at"] = ready_at
        if ready_at and new_status in READY:
            cal = cal or _Calendar(db)
            fields["expires_at"] = clock.iso(
                cal.expires_at(clock.parse_iso(ready_at), fields["expiry_days"])
            )
        if local is None:
            db["orders"].insert({"id": order_id, "status": status, **fields})
        else:
            sets = ", ".join(f"{k} = ?" for k in fields)
            db.execute(
                f"UPDATE orders SET {sets} WHERE id = ?",  # noqa: S608
                [*fields.values(), order_id],
            )
        local_lines = {ln["line"]: ln for ln in (local or {}).get("lines", [])}
        for ln in d.get("lines") or []:
            text = {k: ln.get(k) if ln.get(k) is not None else "" for k in _LINE_TEXT}
            text["qty"] = int(ln["qty"])
            text["price_cents"] = int(ln.get("price_cents") or 0)
            mine = local_lines.get(ln["line"])
            hub_ready = int(ln.get("qty_ready") or 0)
            counters = {
                "qty_ready": hub_ready,
                "qty_collected": int(ln.get("qty_collected") or 0),
                "qty_returned": int(ln.get("qty_returned") or 0),
            }
            if mine is not None:
                if keep_local:
                    counters = {k: mine[k] for k in counters}
                else:
                    counters["qty_collected"] = max(
                        counters["qty_collected"], mine["qty_collected"]
                    )
                    counters["qty_returned"] = max(counters["qty_returned"], mine["qty_returned"])
            picked = max(mine["qty_picked"] if mine else 0, counters["qty_ready"])
            db.execute(
                """INSERT INTO order_lines (order_id, line, sku, ean, name_fr, name_en, size,
                       colour_fr, colour_en, category_slug, qty, price_cents, qty_picked,
                       qty_ready, qty_collected, qty_returned)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (order_id, line) DO UPDATE SET sku = excluded.sku,
                       ean = excluded.ean, name_fr = excluded.name_fr,
                       name_en = excluded.name_en, size = excluded.size,
                       colour_fr = excluded.colour_fr, colour_en = excluded.colour_en,
                       category_slug = excluded.category_slug, qty = excluded.qty,
                       price_cents = excluded.price_cents, qty_picked = excluded.qty_picked,
                       qty_ready = excluded.qty_ready, qty_collected = excluded.qty_collected,
                       qty_returned = excluded.qty_returned""",
                [order_id, int(ln["line"]), *text.values(), picked, *counters.values()],
            )
    return len(changes)


def apply_hub_key_changes(db: Database, changes: list[dict], own: str | None) -> int:
    """Upsert the hub's public keys (feed applier)."""
    for change in changes:
        d = change["data"]
        tokens.public_key_from_b64(d["public_key"])  # refuse a malformed key now
        db.execute(
            """INSERT INTO hub_keys (kid, alg, public_key) VALUES (?, ?, ?)
               ON CONFLICT (kid) DO UPDATE SET alg = excluded.alg,
                   public_key = excluded.public_key""",
            [d["kid"], d.get("alg") or "Ed25519", d["public_key"]],
        )
    return len(changes)


class ExpiryTimer:
    """Runs the expiries in the server every ``interval`` seconds (own connection): web
    orders past their last day (:func:`expire_due`) and reservations past their time
    (:func:`app.reservations.expire_due`)."""

    def __init__(self, path: Any, interval: float = 60) -> None:
        import threading

        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="order-expiry", daemon=True)

    def start(self) -> ExpiryTimer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import logging

        from app.store.domain import reservations

        db = dbmod.connect(self.path)
        try:
            while not self._stop.is_set():
                # Each guarded on its own: a bad row in one must not stop the other, nor
                # the timer.
                for name, job in (("order", expire_due), ("reservation", reservations.expire_due)):
                    try:
                        job(db)
                    except Exception:
                        logging.getLogger(__name__).exception("%s expiry failed", name)
                self._stop.wait(self.interval)
        finally:
            db.close()
