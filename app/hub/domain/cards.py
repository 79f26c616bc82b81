"""« Ma carte »: the customer's personal QR code, shown in the web shop, scanned in store.

A customer has at most one live card: a random id in ``customer_cards`` (128 bits, no
meaning). The QR code carries a hub-signed ``card`` token (app/core/tokens.py, Ed25519,
the same key as pickup codes) holding only that id, an expiry ten minutes away and the
signing key's id: nothing that identifies the person without the hub's tables. A store
verifies it offline with the hub's public keys (app/store/domain/customer_cards.py).

The web shop mints a fresh token every time the QR code is drawn (the page redraws it
every minute), so a photo of the screen is worth ten minutes at most. Rotating the card
(:func:`rotate_card`) revokes the id itself: a new one replaces it, and the old id
names nobody at the hub any more.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from app.core import clock, tokens
from app.core.protocol import CARD_CLAIM, CARD_KIND, MAX_CARD_ID
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import customer_feed, keys
from app.hub.domain.pii import KeyRing, hub_ring

CARD_TOKEN_TTL_S = 600  # ten minutes: the page shows a new code every minute


def new_card_id() -> str:
    """A fresh random card id: 16 random bytes, base64url (22 characters)."""
    return secrets.token_urlsafe(16)


#: The customer's live card id, or None (none issued yet, or all revoked).
current_card = customer_feed.live_card


def issue_card(db: Db, customer_id: str) -> str:
    """The customer's live card id, issued now if there is none."""
    card_id = current_card(db, customer_id)
    if card_id is not None:  # the usual case, every minute: no write transaction
        return card_id
    with hdb.write(db):
        card_id = current_card(db, customer_id)
        if card_id is None:
            card_id = new_card_id()
            hdb.insert(
                db,
                "customer_cards",
                {"card_id": card_id, "customer_id": customer_id, "created_at": clock.now_iso()},
            )
    return card_id


def revoke_cards(db: Db, customer_id: str) -> int:
    """Revoke every live card of the customer (an erasure, a lost phone); how many."""
    with hdb.write(db):
        cur = hdb.execute(
            db,
            "UPDATE customer_cards SET revoked_at = ? WHERE customer_id = ? AND revoked_at IS NULL",
            [clock.now_iso(), customer_id],
        )
    return cur.rowcount


def rotate_card(db: Db, customer_id: str) -> str:
    """Replace the customer's card id by a new one (the old one is revoked)."""
    with hdb.write(db):
        revoke_cards(db, customer_id)
        return issue_card(db, customer_id)


def renew_card(db: Db, ring: KeyRing, customer_id: str) -> str:
    """The customer asked for a new card (« Nouvelle carte »): the id rotated and the
    stores holding their orders told the new one, in one write transaction (a key error
    leaves the old card live, nothing half done). The new card id."""
    with hdb.write(db):
        card_id = rotate_card(db, customer_id)
        customer_feed.card_changed(db, ring, customer_id)
    return card_id


def customer_for_card(db: Db, card_id: Any, *, ever: bool = False) -> str | None:
    """The customer a card id names, or None (unknown card, a malformed id, or its
    customer erased). Live cards only, unless ``ever``: a store's queued transaction
    made with a card renewed or revoked since still names its customer (the kiosk's
    actions, a consent withdrawn, an order request)."""
    if not isinstance(card_id, str) or not card_id.strip() or len(card_id) > MAX_CARD_ID:
        return None
    live = "" if ever else " AND revoked_at IS NULL"
    return hdb.scalar(
        db,
        f"SELECT customer_id FROM customer_cards WHERE card_id = ?{live}",  # noqa: S608
        [card_id.strip()],
    )


def card_token(db: Db, data_dir: str | Path, customer_id: str, now: float | None = None) -> str:
    """A fresh signed ``card`` token for the customer's live card (issued if needed).

    Its claims are the card id alone (plus the standard kind, random jti, issue and
    expiry times, key id): no name, e-mail or customer id.
    """
    private_key, kid = keys.ensure_hub_key(db, data_dir)
    card_id = current_card(db, customer_id)
    if card_id is None:  # a first card: the stores holding their orders learn it, at once
        ring = hub_ring(db, data_dir)
        with hdb.write(db):
            card_id = issue_card(db, customer_id)
            customer_feed.card_changed(db, ring, customer_id)
    return tokens.mint(
        private_key, CARD_KIND, {CARD_CLAIM: card_id}, CARD_TOKEN_TTL_S, now=now, kid=kid
    )
