"""Loyalty across channels (issue 14): points earned on collected orders, whichever
channel they were placed on (the web shop, a kiosk), spent as store credit.

Head office sets the rule (:func:`rules`, :func:`set_rules`, kept in ``hub_meta``):
points per euro collected, and how many points make how much credit. Points are earned
once per order, when its last unit is handed over at a store (the ``order.handover``
handler calls :func:`order_collected`), on the value collected. A conversion turns
whole blocks of points into one store-credit code, the same ``AV-`` codes a return
refunded as store credit gets (app/hub/protocol/orders.py), unique across both.
``customers.loyalty_points`` is the balance; ``loyalty_ledger`` says where it came from.
A return takes back what its lines earned (:func:`order_returned`, called by the
``order.return`` handler): once per return, never more than the order earned, never
below a zero balance (points already spent as credit stay spent).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.core.clock import iso, utcnow
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import store_credit

#: Bounds head office may set (a typo of 10000 points per euro is refused).
MAX_POINTS_PER_EURO = 100
MAX_BLOCK_POINTS = 100_000
MAX_BLOCK_CENTS = 100_000
_KEYS = {
    "points_per_euro": "loyalty_points_per_euro",
    "block_points": "loyalty_block_points",
    "block_cents": "loyalty_block_cents",
}
DEFAULTS = {"points_per_euro": 1, "block_points": 100, "block_cents": 500}


class LoyaltyError(Exception):
    """A refusal: ``code`` is ``not_enough_points`` or ``bad_rule`` (``field`` says which)."""

    def __init__(self, code: str, field: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.field = field


@dataclass(frozen=True)
class Conversion:
    credit_code: str
    points: int
    credit_cents: int


# --- head office's rule ------------------------------------------------------------


def rules(db: Db) -> dict[str, int]:
    """The rule in force: ``points_per_euro``, ``block_points``, ``block_cents``."""
    found = {
        r["key"]: r["value"]
        for r in hdb.rows(
            db,
            "SELECT key, value FROM hub_meta WHERE key IN (?, ?, ?)",
            list(_KEYS.values()),
        )
    }
    out = {}
    for name, key in _KEYS.items():
        try:
            out[name] = int(found[key])
        except (KeyError, ValueError):
            out[name] = DEFAULTS[name]
    return out


def parse_rules(form: dict[str, Any]) -> dict[str, int]:
    """The rule typed in the console's form (points; euros for the credit), checked."""
    out: dict[str, int] = {}
    for name, high in (
        ("points_per_euro", MAX_POINTS_PER_EURO),
        ("block_points", MAX_BLOCK_POINTS),
    ):
        try:
            value = int(str(form.get(name, "")).strip())
        except ValueError:
            raise LoyaltyError("bad_rule", name) from None
        if not (0 if name == "points_per_euro" else 1) <= value <= high:
            raise LoyaltyError("bad_rule", name)
        out[name] = value
    raw = str(form.get("block_euros", "")).strip().replace(",", ".")
    try:
        cents = round(float(raw) * 100)  # "nan" and "inf" raise here too
    except (ValueError, OverflowError):
        raise LoyaltyError("bad_rule", "block_euros") from None
    if not 1 <= cents <= MAX_BLOCK_CENTS:
        raise LoyaltyError("bad_rule", "block_euros")
    out["block_cents"] = cents
    return out


def set_rules(db: Db, new: dict[str, int]) -> dict[str, int]:
    """Store the rule (from :func:`parse_rules`); the previous one is returned."""
    with hdb.write(db):
        before = rules(db)
        for name, key in _KEYS.items():
            value = str(int(new[name]))
            if hdb.one(db, "SELECT 1 AS x FROM hub_meta WHERE key = ?", [key]):
                hdb.execute(db, "UPDATE hub_meta SET value = ? WHERE key = ?", [value, key])
            else:
                hdb.insert(db, "hub_meta", {"key": key, "value": value})
    return before


# --- earning -----------------------------------------------------------------------


def collected_cents(db: Db, order_id: str) -> int:
    """What was collected of an order, after its promotions (per unit collected)."""
    total = 0
    for line in hdb.rows(
        db,
        "SELECT qty, qty_collected, price_cents, discount_cents FROM order_lines "
        "WHERE order_id = ?",
        [order_id],
    ):
        share = line["discount_cents"] * line["qty_collected"] // max(1, line["qty"])
        total += max(0, line["qty_collected"] * line["price_cents"] - share)
    return total


def order_collected(db: Db, order_id: str, now: datetime | str | None = None) -> int:
    """Points for a collected order to its customer, once; how many were earned
    (0: no customer, nothing collected, or already counted). Inside the caller's
    write transaction (the handover's)."""
    order = hdb.one(db, "SELECT customer_id, status FROM orders WHERE id = ?", [order_id])
    if not order or not order["customer_id"] or order["status"] != "collected":
        return 0
    if hdb.one(
        db,
        "SELECT 1 AS x FROM loyalty_ledger WHERE kind = 'earned' AND order_id = ?",
        [order_id],
    ):
        return 0
    points = collected_cents(db, order_id) * rules(db)["points_per_euro"] // 100
    if points <= 0:
        return 0
    stamp = now if isinstance(now, str) else iso(now or utcnow())
    with hdb.write(db):
        _entry(db, order["customer_id"], "earned", points, stamp, order_id=order_id)
        hdb.execute(
            db,
            "UPDATE customers SET loyalty_points = loyalty_points + ? WHERE id = ?",
            [points, order["customer_id"]],
        )
    return points


def returned_cents(db: Db, order_id: str, lines: list[dict[str, Any]]) -> int:
    """What the returned units were worth (after promotions, per unit as collected)."""
    qty: dict[int, int] = {}
    for ln in lines:
        if ln.get("line") is not None and int(ln.get("qty") or 0) > 0:
            qty[int(ln["line"])] = qty.get(int(ln["line"]), 0) + int(ln["qty"])
    total = 0
    for line in hdb.rows(
        db,
        "SELECT line, qty, price_cents, discount_cents FROM order_lines WHERE order_id = ?",
        [order_id],
    ):
        back = qty.get(int(line["line"]), 0)
        share = line["discount_cents"] * back // max(1, line["qty"])
        total += max(0, back * line["price_cents"] - share)
    return total


def order_returned(
    db: Db,
    order_id: str,
    return_id: str,
    lines: list[dict[str, Any]],
    now: datetime | str | None = None,
) -> int:
    """Take back the points the returned ``lines`` (``{"line", "qty"}``) earned; how many
    (0: no customer, nothing earned, this return already counted). In proportion to
    what the order earned on its collected value; never more than it earned in all,
    never below a zero balance; the return that brings the last unit back takes all that
    is left (no rounding kept). Inside the caller's write transaction (the return's),
    after the returned quantities are counted on the order's lines."""
    order = hdb.one(db, "SELECT customer_id FROM orders WHERE id = ?", [order_id])
    if not order or not order["customer_id"]:
        return 0
    customer_id = order["customer_id"]
    with hdb.write(db):
        if hdb.one(
            db,
            "SELECT 1 AS x FROM loyalty_ledger WHERE kind = 'returned' AND return_id = ?",
            [return_id],
        ):
            return 0
        earned = hdb.one(
            db,
            "SELECT points FROM loyalty_ledger WHERE kind = 'earned' AND order_id = ?",
            [order_id],
        )
        if not earned or earned["points"] <= 0:
            return 0
        already = -int(
            hdb.scalar(
                db,
                "SELECT COALESCE(SUM(points), 0) FROM loyalty_ledger "
                "WHERE kind = 'returned' AND order_id = ?",
                [order_id],
            )
            or 0
        )
        worth = collected_cents(db, order_id)
        share = earned["points"] * returned_cents(db, order_id, lines) // max(1, worth)
        if not hdb.one(
            db,
            "SELECT 1 AS x FROM order_lines WHERE order_id = ? AND qty_returned < qty_collected",
            [order_id],
        ):
            share = earned["points"]  # everything collected is back: all it earned goes
        points = min(share, earned["points"] - already, balance(db, customer_id))
        if points <= 0:
            return 0
        stamp = now if isinstance(now, str) else iso(now or utcnow())
        _entry(
            db,
            customer_id,
            "returned",
            -points,
            stamp,
            order_id=order_id,
            return_id=return_id,
        )
        hdb.execute(
            db,
            "UPDATE customers SET loyalty_points = loyalty_points - ? WHERE id = ?",
            [points, customer_id],
        )
    return points


def _entry(db: Db, customer_id: str, kind: str, points: int, at: str, **extra: Any) -> str:
    """Write one ledger row; return its id."""
    entry_id = "loy_" + secrets.token_hex(10)
    hdb.insert(
        db,
        "loyalty_ledger",
        {
            "id": entry_id,
            "customer_id": customer_id,
            "kind": kind,
            "points": points,
            "at": at,
            **extra,
        },
    )
    return entry_id


# --- the balance, spending -----------------------------------------------------------


def balance(db: Db, customer_id: str) -> int:
    row = hdb.one(db, "SELECT loyalty_points FROM customers WHERE id = ?", [customer_id])
    return int(row["loyalty_points"]) if row else 0


def convertible(points: int, rule: dict[str, int]) -> tuple[int, int]:
    """``(points spent, credit cents)`` converting whole blocks of ``points``."""
    blocks = points // max(1, rule["block_points"])
    return blocks * rule["block_points"], blocks * rule["block_cents"]


def credits(db: Db, customer_id: str) -> list[dict[str, Any]]:
    """The store-credit codes this customer's points became, newest first."""
    return hdb.rows(
        db,
        "SELECT credit_code, credit_cents, points, at FROM loyalty_ledger "
        "WHERE customer_id = ? AND kind = 'converted' ORDER BY at DESC, id DESC",
        [customer_id],
    )


def convert(db: Db, customer_id: str, now: datetime | None = None) -> Conversion:
    """Turn every whole block of points into one store-credit code; LoyaltyError
    ``not_enough_points`` when there is not a block. Read and written under the
    write lock: two taps at once make one code."""
    with hdb.write(db):
        rule = rules(db)
        spent, cents = convertible(balance(db, customer_id), rule)
        if spent <= 0:
            raise LoyaltyError("not_enough_points")
        code = store_credit.fresh_code(db)
        at = iso(now or utcnow())
        entry = _entry(
            db,
            customer_id,
            "converted",
            -spent,
            at,
            credit_code=code,
            credit_cents=cents,
        )
        # The code can be spent (app/hub/domain/store_credit.py): written with it.
        store_credit.record(db, code, cents, "points", entry, customer_id, at)
        hdb.execute(
            db,
            "UPDATE customers SET loyalty_points = loyalty_points - ? WHERE id = ?",
            [spent, customer_id],
        )
    return Conversion(code, spent, cents)
