"""A customer at the counter: what this store holds about them (issue 14).

Only what the hub's feed sent this store (``customer_cards``: the card id, the customer
id, a first name, and only for customers with an order here) and the store's own orders
and returns. Used by the counter's customer page (app/store/views/counter_customer.py)
and the staff scan of a « Ma carte » code (app/store/views/scan.py).
"""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

CLOSED = ("collected", "expired", "cancelled")
MAX_ROWS = 50


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


def returnable(db: Database, customer_id: str) -> list[dict[str, Any]]:
    """The customer's orders here with units collected and not yet brought back (a
    return can be taken from their scanned card: no number, no name needed)."""
    cur = db.execute(
        """SELECT o.id, o.number, o.collected_at,
                  (SELECT coalesce(sum(l.qty_collected - l.qty_returned), 0)
                     FROM order_lines l WHERE l.order_id = o.id) AS units
           FROM orders o WHERE o.customer_id = ?
             AND o.status IN ('collected', 'partially_collected')
             AND EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id
                         AND l.qty_collected > l.qty_returned)
           ORDER BY o.collected_at DESC, o.number LIMIT ?""",
        [customer_id, MAX_ROWS],
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


def is_known(db: Database, customer_id: str) -> bool:
    """Whether the hub told this store about this customer (a card of theirs is held)."""
    row = db.execute(
        "SELECT 1 FROM customer_cards WHERE customer_id = ? LIMIT 1", [customer_id]
    ).fetchone()
    return row is not None
