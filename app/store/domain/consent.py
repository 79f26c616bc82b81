"""Consent to personal suggestions at the store (issue 14, RGPD): the store's
counterpart of app/hub/domain/consent.py.

:func:`personal_allowed` is what every personal feature at the kiosk calls first
(suggestions, sizes, "seen online", targeted offers). It is False unless the store
holds the customer's consent for the card (a ``consent_personal`` the hub's card feed
sends into ``customer_cards``; until the feed carries it, the store holds none and
shows nothing personal) and no withdrawal made here still holds.

:func:`revoke` is the kiosk's one-tap withdrawal: a ``consent.revoked`` transaction
with the card id only, queued in the outbox (so it works offline and reaches the hub
at the next sync), and the withdrawal recorded in ``card_revocations`` (migration
m018: the card id, the customer behind it when known, so a renewed card keeps it).
Every page reads that table by one indexed lookup, never the outbox.

The withdrawal holds until the hub sends the card again *after* acknowledging it
(:func:`on_acked`). Before, a card change pulled from the feed was made before the hub
knew of the withdrawal (stale: its suggestions stay hidden). Once the hub has it, it
has withdrawn consent and replaced any earlier change of the card in its feed, so a
card change applied later that carries suggestions means consent given again online.
A withdrawal the hub found superseded (consent given online after the tap) is released
at once. An erased customer's withdrawals are deleted (app/store/domain/
customer_erasure.py).
"""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod
from app.core.protocol import CONSENT_REVOKED, MAX_CARD_ID
from app.store.domain import outbox

# A withdrawal holds for a card while no card change was applied since the hub
# acknowledged it: matched by the card id, or by the customer behind the card (renewed).
_HOLDS = """EXISTS (
    SELECT 1 FROM card_revocations r
     WHERE (r.card_id = c.card_id
            OR (r.customer_id IS NOT NULL AND r.customer_id = c.customer_id))
       AND (r.acked_at IS NULL OR c.updated_at <= r.acked_at))"""


def _card_id_ok(card_id: Any) -> bool:
    return isinstance(card_id, str) and bool(card_id) and len(card_id) <= MAX_CARD_ID


def revoked_here(db: Database, card_id: str) -> bool:
    """Whether a withdrawal made at this store still holds for the card (one indexed
    lookup: the card's row, then ``card_revocations`` by card id or customer id)."""
    if not _card_id_ok(card_id):
        return False
    row = db.execute(
        f"SELECT {_HOLDS} FROM customer_cards c WHERE c.card_id = ?",  # noqa: S608
        [card_id],
    ).fetchone()
    if row is not None:
        return bool(row[0])
    # A card this store does not hold (yet): withdrawn here if its own row says so.
    return (
        db.execute("SELECT 1 FROM card_revocations WHERE card_id = ?", [card_id]).fetchone()
        is not None
    )


def personal_allowed(db: Database, card_id: str | None) -> bool:
    """Whether the kiosk may show this recognised shopper anything personal: consent
    held for the card, no withdrawal holding (one query)."""
    if not _card_id_ok(card_id):
        return False
    row = db.execute(
        f"SELECT c.consent_personal, {_HOLDS} FROM customer_cards c "  # noqa: S608
        "WHERE c.card_id = ?",
        [card_id],
    ).fetchone()
    return bool(row and row[0] and not row[1])


def revoke(db: Database, card_id: str) -> str | None:
    """Queue the withdrawal for the hub and hold it here; the transaction id, or None if
    one is already waiting to be sent for this card (a second tap sends nothing more)."""
    if not _card_id_ok(card_id):
        return None
    with dbmod.write(db):
        pending = db.execute(
            "SELECT 1 FROM card_revocations WHERE card_id = ? AND acked_at IS NULL", [card_id]
        ).fetchone()
        if pending is not None:
            return None
        tx_id = outbox.enqueue(db, CONSENT_REVOKED, {"card_id": card_id})
        row = db.execute(
            "SELECT customer_id FROM customer_cards WHERE card_id = ?", [card_id]
        ).fetchone()
        db.execute(
            """INSERT INTO card_revocations (card_id, customer_id, revoked_at, tx_id)
               VALUES (?, ?, ?, ?)
               ON CONFLICT (card_id) DO UPDATE SET customer_id = excluded.customer_id,
                   revoked_at = excluded.revoked_at, tx_id = excluded.tx_id, acked_at = NULL""",
            [card_id, row[0] if row else None, clock.now_iso(), tx_id],
        )
        return tx_id


def on_acked(db: Database, tx_id: str, payload: dict[str, Any], result: Any, at: str) -> None:
    """The hub has the withdrawal (the acknowledgement hook of ``consent.revoked``,
    app/store/domain/acks.py): the queued row forgets the card id, and the withdrawal
    held here is released by the next card change (or at once if the hub found it
    superseded by a consent given online after the tap)."""
    if isinstance(result, dict) and result.get("superseded"):
        db.execute("DELETE FROM card_revocations WHERE tx_id = ?", [tx_id])
    else:
        db.execute("UPDATE card_revocations SET acked_at = ? WHERE tx_id = ?", [at, tx_id])
    if "card_id" in payload:
        kept = {k: v for k, v in payload.items() if k != "card_id"}
        db.execute(
            "UPDATE outbox SET payload = ? WHERE id = ?",
            [json.dumps(kept, separators=(",", ":")), tx_id],
        )


def prune(db: Database) -> int:
    """Delete the withdrawals no longer holding: acknowledged, and every card row of
    theirs sent again since (or none held). Inside the caller's write; how many."""
    return db.execute(
        """DELETE FROM card_revocations WHERE acked_at IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM customer_cards c
                WHERE (c.card_id = card_revocations.card_id
                       OR c.customer_id = card_revocations.customer_id)
                  AND c.updated_at <= card_revocations.acked_at)"""
    ).rowcount


def forget_customer(db: Database, customer_id: str, card_ids: list[str]) -> int:
    """An erased customer's withdrawals: deleted (inside the caller's write)."""
    written = db.execute(
        "DELETE FROM card_revocations WHERE customer_id = ?", [customer_id]
    ).rowcount
    for card_id in card_ids:
        written += db.execute("DELETE FROM card_revocations WHERE card_id = ?", [card_id]).rowcount
    return written
