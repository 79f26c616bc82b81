"""A signed-in visit to the web shop is a contact (issue 14, RGPD retention).

The CNIL's 3 years run from the customer's last contact: an order or a visit, never an
e-mail opened (app/hub/domain/retention.py reads ``customers.last_contact_at``). Any
page of the shop (every blueprint made by :func:`app.hub.views.webshop.blueprint`)
runs :func:`note_visit` first: a signed-in customer's last contact moves to now, at
most one write per customer per day. Nothing else is recorded of the visit.
"""

from __future__ import annotations

from flask import session

from app.core.clock import iso, utcnow
from app.hub.domain import customer_sessions, customers
from app.hub.storage import get_db

#: The session key of the customer session's token (app/hub/views/account.py's; this
#: module cannot import that one, which builds its blueprint from webshop.py).
SESSION_KEY = "customer"


def note_visit() -> None:
    """``before_request`` of the shop's blueprints: a signed-in visit is a contact."""
    token = session.get(SESSION_KEY)
    if token is None:
        return
    db = get_db()
    customer = customer_sessions.session_customer(db, token)
    if customer is None:
        return
    now = iso(utcnow())
    if str(customer["last_contact_at"] or "")[:10] < now[:10]:  # once a day (UTC) at most
        customers.touch_contact(db, customer["id"], now)
