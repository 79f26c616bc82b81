"""``consent.revoked``: a recognised shopper withdrew consent to personal suggestions
at a kiosk, maybe offline; the store queued it with the card id alone (issue 14).

The card id may have been renewed since the shopper tapped (the revocation was made
with the card then live): any card the customer ever had counts. An unknown card (the
customer erased meanwhile) is accepted with nothing to apply, so it never parks at
the store. Journaled for the customer with the channel ``kiosk`` and the store.

A store offline for days sends its withdrawal late: what counts is when the shopper
tapped (the transaction's ``occurred_at``), not when it arrives. A consent given online
*after* that instant wins (the withdrawal arrives superseded, nothing changes); one
given before loses (the withdrawal applies, dated when it was made).
"""

from __future__ import annotations

from typing import Any

from app.core.clock import iso, parse_iso
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import cards, consent
from app.hub.protocol import personal
from app.hub.protocol.common import OCCURRED_AT, invalid


def _instant(text: Any) -> str | None:
    try:
        return iso(parse_iso(text)) if isinstance(text, str) and text else None
    except ValueError:
        return None


def revoked(db: Db, store_id: str, payload: dict[str, Any], tx_id: str) -> dict[str, Any]:
    card_id = payload.get("card_id")
    if not isinstance(card_id, str) or not card_id.strip():
        raise invalid("payload.card_id must be a card id")
    customer_id = cards.customer_for_card(db, card_id, ever=True)
    if customer_id is None:
        return {"applied": False}
    tapped = _instant(OCCURRED_AT.get())
    row = hdb.one(
        db, "SELECT consent_personal, consent_at FROM customers WHERE id = ?", [customer_id]
    )
    last = _instant(row["consent_at"]) if row else None
    if tapped and last and row["consent_personal"] and last > tapped:
        # Given online after the shopper tapped at the kiosk: the later choice stands.
        return {"applied": False, "superseded": True}
    changed = consent.set_consent(
        db, customer_id, False, "kiosk", store_id=store_id, now=tapped or None
    )
    if changed:  # every store holding their suggestions forgets them
        personal.changed(db, customer_id)
    return {"applied": True, "changed": changed}
