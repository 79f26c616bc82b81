"""A customer's card (« Ma carte ») scanned at the counter: their orders at this store.

The staff scan (app/store/views/scan.py) verifies the card offline
(app/store/domain/customer_cards.py) and finds the customer behind it in what the hub's
feed sent this store (``customer_cards``, only for customers with an order here). This
page then lists the customer's open orders here and their returns, under their first
name only: no surname, no e-mail. Logged by customer id, never a name or a card id.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import abort, render_template
from flask_babel import format_date
from sqlite_utils import Database

from app.core import clock
from app.store.storage import get_db

log = logging.getLogger(__name__)

CLOSED = ("collected", "expired", "cancelled")
MAX_ROWS = 50
MAX_CUSTOMER_ID = 64


def customer_for_card(db: Database, card_id: str) -> str | None:
    """The customer this store holds for a card id, or None (the hub sent nothing)."""
    row = db.execute(
        "SELECT customer_id FROM customer_cards WHERE card_id = ?", [card_id]
    ).fetchone()
    return row[0] if row else None


def first_name_of(db: Database, customer_id: str) -> str | None:
    row = db.execute(
        "SELECT first_name FROM customer_cards WHERE customer_id = ? AND first_name IS NOT NULL "
        "ORDER BY updated_at DESC LIMIT 1",
        [customer_id],
    ).fetchone()
    return row[0] if row else None


def open_orders(db: Database, customer_id: str) -> list[dict[str, Any]]:
    """The customer's orders at this store not yet collected, expired or cancelled."""
    marks = ", ".join("?" for _ in CLOSED)
    cur = db.execute(
        f"""SELECT o.id, o.number, o.status, o.placed_at, o.shelf_slot,
                   (SELECT coalesce(sum(qty), 0) FROM order_lines l WHERE l.order_id = o.id)
                       AS items
            FROM orders o WHERE o.customer_id = ? AND o.status NOT IN ({marks})
            ORDER BY o.placed_at DESC, o.number LIMIT ?""",  # noqa: S608 (marks)
        [customer_id, *CLOSED, MAX_ROWS],
    )
    names = [c[0] for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def returns_of(db: Database, customer_id: str) -> list[dict[str, Any]]:
    """The returns made here on the customer's orders, newest first."""
    cur = db.execute(
        """SELECT r.id, r.at, r.refund, r.lines, o.id AS order_id, o.number
           FROM returns r JOIN orders o ON o.id = r.order_id
           WHERE o.customer_id = ? ORDER BY r.at DESC LIMIT ?""",
        [customer_id, MAX_ROWS],
    )
    names = [c[0] for c in cur.description]
    rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    for row in rows:
        try:
            row["units"] = sum(int(ln.get("qty") or 0) for ln in json.loads(row.pop("lines")))
        except (TypeError, ValueError, AttributeError):
            row["units"] = 0
    return rows


def _day(text: str | None) -> str:
    try:
        return format_date(clock.parse_iso(text), "medium") if text else ""
    except ValueError:
        return ""


def customer_page(customer_id: str) -> Any:
    """``/staff/customers/<customer_id>``: the page a scanned card opens."""
    db = get_db()
    customer_id = customer_id[:MAX_CUSTOMER_ID]
    known = db.execute(
        "SELECT 1 FROM customer_cards WHERE customer_id = ? LIMIT 1", [customer_id]
    ).fetchone()
    if known is None:
        abort(404)
    orders = open_orders(db, customer_id)
    returns = returns_of(db, customer_id)
    for row in orders:
        row["day"] = _day(row["placed_at"])
    for row in returns:
        row["day"] = _day(row["at"])
    log.info("customer card at the counter: customer %s, %d open orders", customer_id, len(orders))
    return render_template(
        "orders/customer.html",
        first_name=first_name_of(db, customer_id),
        orders=orders,
        returns=returns,
    )
