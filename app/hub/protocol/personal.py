"""A customer's card sent again from a store's transaction (issue 14): its personal
payload after a consent withdrawn at a kiosk (``consent.revoked``) or an order handed
over in full (``order.handover``: what they bought moves their sizes and suggestions);
its loyalty balance after points earned or taken back (a hand-over, a return).

The card change carries the first name, so sending it needs the personal-data key ring:
the batch's data directory gives it (app/hub/domain/order_people.py ``ring_of``). A
ring that cannot be opened never fails the store's transaction: the payload is sent by
the next daily ``kiosk hub personal refresh`` instead, and the reason is logged (the
customer id only).
"""

from __future__ import annotations

import logging

from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import consent, customer_feed, order_people
from app.hub.domain.pii import PiiKeyError

log = logging.getLogger(__name__)


def changed(db: Db, customer_id: str) -> int:
    """Send the customer's card again where its personal part changed; how many changes."""
    try:
        ring = order_people.ring_of(db)
    except PiiKeyError as exc:
        log.warning("personal payload of %s left to the daily refresh: %s", customer_id, exc)
        return 0
    return customer_feed.personal_changed(db, ring, customer_id)


def points_changed(db: Db, order_id: str) -> int:
    """The order's customer earned or gave back points: the stores holding their card
    show the new balance; how many changes."""
    customer_id = hdb.scalar(db, "SELECT customer_id FROM orders WHERE id = ?", [order_id])
    if not customer_id:
        return 0
    try:
        ring = order_people.ring_of(db)
    except PiiKeyError as exc:
        log.warning("loyalty balance of %s not sent (with their next card): %s", customer_id, exc)
        return 0
    return customer_feed.card_changed(db, ring, customer_id)


def order_collected(db: Db, order_id: str) -> int:
    """An order handed over in full: its customer's payload, if they consented."""
    customer_id = hdb.scalar(db, "SELECT customer_id FROM orders WHERE id = ?", [order_id])
    if not customer_id or not consent.personal_allowed(db, customer_id):
        return 0
    return changed(db, customer_id)
