"""A customer's card (« Ma carte ») scanned at the counter: their orders at this store.

The staff scan (app/store/views/scan.py) verifies the card offline
(app/store/domain/customer_cards.py) and finds the customer behind it in what the hub's
feed sent this store (app/store/domain/customer_orders.py). This page then lists the
customer's open orders here and their returns, under their first name only: no surname,
no e-mail. Its address names nobody (``/staff/customer``: the customer id is held in the
staff session for ``VERIFIED_S`` after the scan). Logged by customer id, never a name
or a card id.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, render_template, session
from flask_babel import format_date
from flask_babel import gettext as _

from app.core import clock
from app.store.domain import customer_orders
from app.store.storage import get_db
from app.store.views.counter_common import VERIFIED_S

log = logging.getLogger(__name__)

MAX_CUSTOMER_ID = 64
SESSION_KEY = "counter_customer"  # {"id": the scanned card's customer, "at": when}


def _day(text: str | None) -> str:
    try:
        return format_date(clock.parse_iso(text), "medium") if text else ""
    except ValueError:
        return ""


def _scanned_customer() -> str | None:
    """The customer whose card was scanned here within ``VERIFIED_S``, or None."""
    held = session.get(SESSION_KEY)
    if not isinstance(held, dict) or not isinstance(held.get("id"), str):
        return None
    at = held.get("at")
    if not isinstance(at, int | float) or clock.now_s() - at > VERIFIED_S:
        return None
    return held["id"][:MAX_CUSTOMER_ID]


def scanned_customer_id() -> str | None:
    """The customer whose card was scanned at this counter within ``VERIFIED_S``: the
    returns screen takes back their collected orders without a number or a name."""
    return _scanned_customer()


def customer_page() -> Any:
    """``/staff/customer``: the page a scanned card opens. The customer is the one whose
    card was scanned (held in the staff session a while): no id in the URL."""
    db = get_db()
    customer_id = _scanned_customer()
    if customer_id is None:
        return render_template("orders/desk.html", error=_("Scan the customer's card again.")), 404
    if not customer_orders.is_known(db, customer_id):
        abort(404)
    orders = customer_orders.open_orders(db, customer_id)
    returns = customer_orders.returns_of(db, customer_id)
    returnable = customer_orders.returnable(db, customer_id)
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
        returnable=returnable,
    )
