"""What a web order must be to be placed: the customer's name and e-mail, its lines
(merged, priced as the shopper was shown them, else at today's base price). Below
:mod:`.orders`, which places it; ``OrderError`` is raised with a stable ``code``."""

from __future__ import annotations

from typing import Any

from app.core.pricing import PricedCart
from app.core.protocol import MAX_CUSTOMER_NAME, MAX_EMAIL
from app.hub import database as hdb
from app.hub.database import Db

MAX_LINES = 50
MAX_QTY = 99


class OrderError(ValueError):
    """An order that cannot be placed as asked; ``code`` is stable for callers."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_customer(name: str, email: str) -> tuple[str, str]:
    name, email = (name or "").strip(), (email or "").strip()
    if not name or len(name) > MAX_CUSTOMER_NAME:
        raise OrderError(
            "invalid_customer", f"a customer name of 1 to {MAX_CUSTOMER_NAME} characters"
        )
    if len(email) > MAX_EMAIL or email.count("@") != 1 or not all(email.split("@")):
        raise OrderError("invalid_customer", "a valid e-mail address is needed")
    return name, email


def check_lines(
    db: Db, lines: list[dict[str, Any]], priced: PricedCart | None = None
) -> list[tuple[str, int, int, int]]:
    """Validated ``(sku, qty, unit price, line discount)`` per line; the same sku twice
    is merged. Priced from ``priced`` (what the shopper was shown) when given, else at
    today's base price with no discount."""
    if not lines or len(lines) > MAX_LINES:
        raise OrderError("invalid_lines", f"an order has 1 to {MAX_LINES} lines")
    merged: dict[str, int] = {}
    for line in lines:
        sku, qty = line.get("sku"), line.get("qty")
        if not isinstance(sku, str) or not sku:
            raise OrderError("invalid_lines", "every line needs a sku")
        if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= MAX_QTY:
            raise OrderError("invalid_lines", f"quantities are 1 to {MAX_QTY}")
        merged[sku] = merged.get(sku, 0) + qty
        if merged[sku] > MAX_QTY:
            raise OrderError("invalid_lines", f"quantities are 1 to {MAX_QTY}")
    shown = _shown_prices(merged, priced) if priced is not None else None
    out = []
    for sku, qty in merged.items():
        if shown is not None:
            if hdb.execute(db, "SELECT 1 FROM variants WHERE sku = ?", [sku]).fetchone() is None:
                raise OrderError("unknown_sku", f"no variant {sku}")
            out.append((sku, qty, *shown[sku]))
            continue
        row = hdb.execute(
            db,
            "SELECT coalesce(v.price_cents, p.price_cents) FROM variants v "
            "JOIN products p ON p.pk = v.product_pk WHERE v.sku = ?",
            [sku],
        ).fetchone()
        if row is None:
            raise OrderError("unknown_sku", f"no variant {sku}")
        out.append((sku, qty, row[0], 0))
    return out


def _shown_prices(merged: dict[str, int], priced: PricedCart) -> dict[str, tuple[int, int]]:
    """sku -> ``(unit price, line discount)`` from a priced cart covering exactly
    ``merged``; anything else is refused rather than half-priced."""
    shown: dict[str, tuple[int, int]] = {}
    for line in priced.lines:
        if line.sku in shown or merged.get(line.sku) != line.qty:
            raise OrderError("invalid_lines", "the prices shown do not match the order's lines")
        if line.unit_cents < 0 or not 0 <= line.discount_cents <= line.unit_cents * line.qty:
            raise OrderError("invalid_lines", f"a price out of range for {line.sku}")
        shown[line.sku] = (line.unit_cents, line.discount_cents)
    if set(shown) != set(merged):
        raise OrderError("invalid_lines", "the prices shown do not match the order's lines")
    return shown
