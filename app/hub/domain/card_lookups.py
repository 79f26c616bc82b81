"""A card scanned at a store that does not hold it (issue 14: a walk-in shopper).

The store's feed carries a customer's card only to the stores where they have an order
(:func:`app.hub.domain.customer_feed.stores_of`). A shopper may walk into any other
store and scan « Ma carte »: that store verifies the card offline, then asks the hub
(``POST /api/v1/cards/lookup``, signed) who it is. :func:`look_up` answers exactly
what a ``customer_card`` change carries (:func:`customer_feed.card_data`: the first
name, the points, ``personal`` only with consent) for a live card, and records in
``customer_card_stores`` (migration m019) that this store now holds the card:
``stores_of`` includes it for :data:`customer_feed.RECENT` (60 days) after the scan,
so a withdrawal, a renewal, new points or an erasure reach it like the other stores.

The answer is also appended to the store's feed (:func:`customer_feed.publish_card`):
the fingerprint of what the store holds is kept (a later withdrawal sends it null),
and a store whose answer was lost on the way (a timeout) gets it anyway.
"""

from __future__ import annotations

from typing import Any

from app.core.clock import iso, now_iso, utcnow
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import cards, customer_feed
from app.hub.domain.pii import KeyRing

MAX_CARD_ID = 64


def valid_card_id(value: object) -> bool:
    """A card id as the hub makes them: a short string of URL-safe characters."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_CARD_ID
        and all(c.isascii() and (c.isalnum() or c in "-_") for c in value)
    )


def look_up(db: Db, ring: KeyRing, store_id: str, card_id: str) -> dict[str, Any] | None:
    """What the store may know of a live card (as a ``customer_card`` change), the store
    now recorded as holding it; None for an unknown or revoked card (no reason given)."""
    if not valid_card_id(card_id):
        return None
    with hdb.write(db):
        customer_id = cards.customer_for_card(db, card_id)
        if customer_id is None:
            return None
        data = customer_feed.card_data(db, ring, customer_id)
        if data is None or data["card_id"] != card_id:
            return None
        # Rows past the 60 days name a store that no longer needs anything: gone.
        hdb.execute(
            db,
            "DELETE FROM customer_card_stores WHERE looked_up_at < ?",
            [iso(utcnow() - customer_feed.RECENT)],
        )
        hdb.upsert(
            db,
            "customer_card_stores",
            {"customer_id": customer_id, "store_id": store_id, "looked_up_at": now_iso()},
            ["customer_id", "store_id"],
        )
        customer_feed.publish_card(db, ring, customer_id, store_id, data)
    return data
