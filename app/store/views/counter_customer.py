"""A customer's card (« Ma carte ») scanned at the counter: their orders at this store.

The staff scan (app/store/views/scan.py) verifies the card offline
(app/store/domain/customer_cards.py) and finds the customer behind it in what the hub's
feed sent this store (app/store/domain/customer_orders.py). This page then lists the
customer's open orders here and their returns, under their first name only: no surname,
no e-mail. Logged by customer id, never a name or a card id.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, render_template
from flask_babel import format_date

from app.core import clock
from app.store.domain import customer_orders
from app.store.storage import get_db

log = logging.getLogger(__name__)

MAX_CUSTOMER_ID = 64


def _day(text: str | None) -> str:
    try:
        return format_date(clock.parse_iso(text), "medium") if text else ""
    except ValueError:
        return ""


def customer_page(customer_id: str) -> Any:
    """``/staff/customers/<customer_id>``: the page a scanned card opens."""
    db = get_db()
    customer_id = customer_id[:MAX_CUSTOMER_ID]
    if not customer_orders.is_known(db, customer_id):
        abort(404)
    orders = customer_orders.open_orders(db, customer_id)
    returns = customer_orders.returns_of(db, customer_id)
    for row in orders:
        row["day"] = _day(row["placed_at"])
    for row in returns:
        row["day"] = _day(row["at"])
    log.info("customer card at the counter: customer %s, %d open orders", customer_id, len(orders))
    return render_template(
        "orders/customer.html",
        first_name=customer_orders.first_name_of(db, customer_id),
        orders=orders,
        returns=returns,
    )
