"""Consent to personal suggestions at the store (issue 14, RGPD): the store's
counterpart of app/hub/domain/consent.py.

:func:`personal_allowed` is what every personal feature at the kiosk calls first
(suggestions, sizes, "seen online", targeted offers). It is False unless the store
holds the customer's consent for the card (a ``consent_personal`` the hub's card feed
sends into ``customer_cards``; until the feed carries it, the store holds none and
shows nothing personal) and the shopper did not withdraw it here.

:func:`revoke` is the kiosk's one-tap withdrawal: a ``consent.revoked`` transaction
with the card id only, queued in the outbox (so it works offline and reaches the hub
at the next sync). From that moment :func:`personal_allowed` is False for the card at
this store, whatever the feed said before.
"""

from __future__ import annotations

from sqlite_utils import Database

from app.core import db as dbmod
from app.core.protocol import CONSENT_REVOKED, MAX_CARD_ID
from app.store.domain import outbox


def revoked_here(db: Database, card_id: str) -> bool:
    """Whether the shopper withdrew consent at this store since the hub last told it
    about the card (a withdrawal queued after the card's feed update)."""
    row = db.execute(
        """SELECT 1 FROM outbox WHERE type = ? AND json_extract(payload, '$.card_id') = ?
             AND created_at >= coalesce(
                 (SELECT updated_at FROM customer_cards WHERE card_id = ?), '')
           LIMIT 1""",
        [CONSENT_REVOKED, card_id, card_id],
    ).fetchone()
    return row is not None


def _pending_revocation(db: Database, card_id: str) -> bool:
    row = db.execute(
        """SELECT 1 FROM outbox WHERE type = ? AND json_extract(payload, '$.card_id') = ?
             AND acked_at IS NULL LIMIT 1""",
        [CONSENT_REVOKED, card_id],
    ).fetchone()
    return row is not None


def _consent_held(db: Database, card_id: str) -> bool:
    columns = {r[1] for r in db.execute("PRAGMA table_info(customer_cards)").fetchall()}
    if "consent_personal" not in columns:
        return False  # the feed does not carry consent yet: none is held
    row = db.execute(
        "SELECT consent_personal FROM customer_cards WHERE card_id = ?", [card_id]
    ).fetchone()
    return bool(row and row[0])


def personal_allowed(db: Database, card_id: str | None) -> bool:
    """Whether the kiosk may show this recognised shopper anything personal."""
    if not isinstance(card_id, str) or not card_id or len(card_id) > MAX_CARD_ID:
        return False
    return _consent_held(db, card_id) and not revoked_here(db, card_id)


def revoke(db: Database, card_id: str) -> str | None:
    """Queue the withdrawal for the hub; the transaction id, or None if one is already
    waiting to be sent for this card (a second tap sends nothing more)."""
    if not isinstance(card_id, str) or not card_id or len(card_id) > MAX_CARD_ID:
        return None
    with dbmod.write(db):
        if _pending_revocation(db, card_id):
            return None
        return outbox.enqueue(db, CONSENT_REVOKED, {"card_id": card_id})
