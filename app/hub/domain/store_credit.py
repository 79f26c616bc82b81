"""Store credit (``AV-`` codes) that can really be spent (issue 14).

Every code lives in ``store_credits`` (hub migration m018_store_credit): its value, what
is left of it, its owner (the customer when known), where it came from (``points``:
loyalty points converted, :func:`app.hub.domain.loyalty.convert`; ``return``: a return
refunded as store credit, app/hub/protocol/orders.py) and when it was used up.

Spending online (the web shop's checkout): :func:`apply` runs inside the order's write
transaction, so the order and the codes it uses commit together or not at all; two
checkouts applying the same code are serialised by the hub-wide write lock and the
second finds nothing left (``CreditError("spent")``).

A code worth more than the order keeps the rest on the SAME code (``left_cents``): the
customer keeps one code to remember, nothing new to mail, and the rest is spendable on
the next order (``spent_at`` is set when nothing is left). The order records what it
used: ``orders.credit_cents`` and ``orders.credit_codes`` (JSON ``[{"code", "cents"}]``).

Who may spend a code: a code with an owner only by that customer, signed in; a code
without one (a return on a guest order) by whoever holds it, like a paper voucher.
Refusals never say whose a code is.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from typing import Any

from app.core.clock import iso, utcnow
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain.registry import ID_ALPHABET

SOURCES = ("points", "return")
MAX_CODES = 5  # codes applied to one order
CODE_ALPHABET = ID_ALPHABET.upper()
_CODE = re.compile(r"^AV-?([0-9A-Z]{4})-?([0-9A-Z]{4})$")


class CreditError(Exception):
    """A refusal: ``code`` is ``bad_code`` (not a code's shape), ``unknown``, ``spent``,
    ``not_yours`` (another account's: never says whose) or ``nothing_due``."""

    def __init__(self, code: str, credit: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.credit = credit


def normalise(text: str) -> str | None:
    """``av 7kq2 m9xd`` -> ``AV-7KQ2-M9XD``; None when it cannot be a code."""
    match = _CODE.match(re.sub(r"\s+", "", str(text or "")).upper()[:20])
    return f"AV-{match.group(1)}-{match.group(2)}" if match else None


def record(
    db: Db,
    code: str,
    cents: int,
    source: str,
    source_id: str,
    customer_id: str | None,
    now: datetime | str | None = None,
) -> None:
    """Write a new code (call inside the transaction that made it)."""
    if source not in SOURCES:
        raise ValueError(source)
    at = now if isinstance(now, str) else iso(now or utcnow())
    hdb.insert(
        db,
        "store_credits",
        {
            "code": code,
            "cents": max(0, int(cents)),
            "left_cents": max(0, int(cents)),
            "customer_id": customer_id,
            "source": source,
            "source_id": source_id,
            "created_at": at,
        },
    )


def code_taken(db: Db, code: str) -> bool:
    """True when ``code`` is already a credit code (any source)."""
    return hdb.one(db, "SELECT 1 AS x FROM store_credits WHERE code = ?", [code]) is not None


def new_code() -> str:
    """A store-credit code such as ``AV-7KQ2-M9XD`` (40 random bits)."""
    chars = [secrets.choice(CODE_ALPHABET) for _ in range(8)]
    return f"AV-{''.join(chars[:4])}-{''.join(chars[4:])}"


def fresh_code(db: Db) -> str:
    """A code no credit has had (``store_credits`` holds every one: m018 back-filled the
    returns' and the points' codes), for a return or a points conversion alike."""
    while True:
        code = new_code()
        if not code_taken(db, code):
            return code


def return_value(db: Db, order_id: str | None, lines: list[dict[str, Any]]) -> int:
    """What a return's ``lines`` (``{"line", "sku", "qty"}``) were paid, in cents: each
    order line's total (discount included) shared by unit; without an order, the
    variant's price."""
    total = 0
    for line in lines:
        qty = int(line.get("qty") or 0)
        if order_id is not None and line.get("line") is not None:
            row = hdb.one(
                db,
                "SELECT qty, price_cents, discount_cents FROM order_lines "
                "WHERE order_id = ? AND line = ?",
                [order_id, line["line"]],
            )
            if row and row["qty"]:
                paid = row["qty"] * row["price_cents"] - row["discount_cents"]
                total += round(paid * qty / row["qty"])
        else:
            price = hdb.scalar(
                db,
                "SELECT COALESCE(v.price_cents, p.price_cents) FROM variants v "
                "JOIN products p ON p.pk = v.product_pk WHERE v.sku = ?",
                [line.get("sku")],
            )
            total += qty * int(price or 0)
    return max(0, total)


def of_customer(db: Db, customer_id: str) -> list[dict[str, Any]]:
    """The customer's codes, newest first (spent ones included)."""
    return hdb.rows(
        db,
        "SELECT code, cents, left_cents, source, source_id, created_at, spent_at "
        "FROM store_credits WHERE customer_id = ? ORDER BY created_at DESC, code",
        [customer_id],
    )


def unspent(db: Db, customer_id: str) -> list[dict[str, Any]]:
    """The customer's codes with something left, oldest first (spent in that order)."""
    return hdb.rows(
        db,
        "SELECT code, cents, left_cents, source, created_at FROM store_credits "
        "WHERE customer_id = ? AND left_cents > 0 ORDER BY created_at, code",
        [customer_id],
    )


def check(db: Db, code: str, customer_id: str | None) -> dict[str, Any]:
    """The row of a code this shopper may spend now, else CreditError."""
    normal = normalise(code)
    if normal is None:
        raise CreditError("bad_code", str(code)[:20])
    row = hdb.one(
        db,
        "SELECT code, cents, left_cents, customer_id FROM store_credits WHERE code = ?",
        [normal],
    )
    if row is None:
        raise CreditError("unknown", normal)
    if row["customer_id"] is not None and row["customer_id"] != customer_id:
        raise CreditError("not_yours", normal)
    if row["left_cents"] <= 0:
        raise CreditError("spent", normal)
    return row


def order_due(db: Db, order_id: str) -> int:
    """What the order's lines cost, in cents (its credit not deducted)."""
    return int(
        hdb.scalar(
            db,
            "SELECT COALESCE(SUM(qty * price_cents - discount_cents), 0) FROM order_lines "
            "WHERE order_id = ?",
            [order_id],
        )
        or 0
    )


def apply(
    db: Db,
    order_id: str,
    codes: list[str],
    customer_id: str | None,
    now: datetime | None = None,
) -> int:
    """Spend ``codes`` on the order, in order, up to what it costs; return the cents
    applied. Inside the order's write transaction (a savepoint here): a refusal
    (CreditError) undoes the codes' use, and the caller's rollback the order too.
    A code is used only as far as the order needs it; the rest stays on it."""
    at = iso(now or utcnow())
    wanted: list[str] = []
    for code in codes[:MAX_CODES]:
        normal = normalise(code) or code
        if normal not in wanted:
            wanted.append(normal)
    if not wanted:
        return 0
    used: list[dict[str, Any]] = []
    with hdb.write(db):
        due = order_due(db, order_id)
        for code in wanted:
            row = check(db, code, customer_id)  # read under the write lock
            if due <= 0:
                raise CreditError("nothing_due", row["code"])
            take = min(due, int(row["left_cents"]))
            left = int(row["left_cents"]) - take
            hdb.execute(
                db,
                "UPDATE store_credits SET left_cents = ?, spent_at = ? "
                "WHERE code = ? AND left_cents = ?",
                [left, at if left == 0 else None, row["code"], row["left_cents"]],
            )
            due -= take
            used.append({"code": row["code"], "cents": take})
        applied = sum(u["cents"] for u in used)
        hdb.execute(
            db,
            "UPDATE orders SET credit_cents = ?, credit_codes = ? WHERE id = ?",
            [applied, json.dumps(used), order_id],
        )
    return applied
