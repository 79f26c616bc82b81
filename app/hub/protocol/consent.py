"""``consent.revoked``: a recognised shopper withdrew consent to personal suggestions
at a kiosk, maybe offline; the store queued it with the card id alone (issue 14).

The card id may have been renewed since the shopper tapped (the revocation was made
with the card then live): any card the customer ever had counts. An unknown card (the
customer erased meanwhile) is accepted with nothing to apply, so it never parks at
the store. Journaled for the customer with the channel ``kiosk`` and the store.
"""

from __future__ import annotations

from typing import Any

from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import consent
from app.hub.protocol.common import invalid


def revoked(db: Db, store_id: str, payload: dict[str, Any], tx_id: str) -> dict[str, Any]:
    card_id = payload.get("card_id")
    if not isinstance(card_id, str) or not card_id.strip():
        raise invalid("payload.card_id must be a card id")
    customer_id = hdb.scalar(
        db, "SELECT customer_id FROM customer_cards WHERE card_id = ?", [card_id.strip()]
    )
    if customer_id is None:
        return {"applied": False}
    changed = consent.set_consent(db, customer_id, False, "kiosk", store_id=store_id)
    return {"applied": True, "changed": changed}
