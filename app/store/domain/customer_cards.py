"""« Ma carte » at the store: a customer's card QR code verified offline, and what the
store holds about the card (a first name at most).

The QR code is a hub-signed ``card`` token (app/core/tokens.py) carrying a random card
id and nothing personal. It is checked here with the hub's public keys the store
already holds (domain/hub_keys.py, from the change feed): signature, kind, expiry by
the store's clock. No hub is asked: a card is recognised with the network down.

``customer_cards`` (migration m012) is what the hub's feed will tell this store about
a card: the customer id behind it and a first name to greet them with. Until the feed
sends it, a card is recognised anonymously ("Bonjour !").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlite_utils import Database

from app.core import clock, tokens
from app.core.protocol import CARD_CLAIM, CARD_KIND, MAX_CARD_ID
from app.store.domain.hub_keys import hub_keys

MAX_FIRST_NAME = 60
# Why a card was refused: the token errors of app/core/tokens.py, and ``bad_card``
# (signed by the hub, but its card id is missing or not an id).
REASONS = (
    "malformed",
    "bad_signature",
    "wrong_kind",
    "expired",
    "not_yet_valid",
    "unknown_key",
    "revoked",
    "bad_card",
)


@dataclass(frozen=True)
class CardCheck:
    """A scanned card: its id when it is valid, else why not (one of ``REASONS``)."""

    card_id: str | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.card_id is not None


def looks_like_card(text: str) -> bool:
    """Whether a scanned code *claims* to be a card (unverified: only to route it)."""
    return isinstance(text, str) and tokens.peek_kind(text.strip()) == CARD_KIND


def verify_card(db: Database, text: str, now: float | None = None) -> CardCheck:
    """Verify a scanned card token offline: the card id, or the reason it is refused."""
    try:
        payload = tokens.verify(hub_keys(db), (text or "").strip(), CARD_KIND, now=now)
    except tokens.TokenError as exc:
        return CardCheck(None, exc.code)
    card_id = payload.get(CARD_CLAIM)
    if not isinstance(card_id, str) or not card_id or len(card_id) > MAX_CARD_ID:
        return CardCheck(None, "bad_card")
    return CardCheck(card_id)


def first_name(db: Database, card_id: str | None) -> str | None:
    """The first name this store holds for a card, or None (none sent, none given)."""
    if not card_id:
        return None
    row = db.execute(
        "SELECT first_name FROM customer_cards WHERE card_id = ?", [card_id]
    ).fetchone()
    return (row[0] or None) if row else None


def save_card(db: Database, card_id: str, customer_id: str, name: str | None) -> None:
    """Record what the hub says of a card (the future feed applier's one write)."""
    name = (name or "").strip()[:MAX_FIRST_NAME] or None
    db.execute(
        """INSERT INTO customer_cards (card_id, customer_id, first_name, updated_at)
           VALUES (?, ?, ?, ?)
           ON CONFLICT (card_id) DO UPDATE SET customer_id = excluded.customer_id,
               first_name = excluded.first_name, updated_at = excluded.updated_at""",
        [card_id, customer_id, name, clock.now_iso()],
    )


MAX_POINTS = 10_000_000


def save_points(db: Database, card_id: str, points: object) -> None:
    """Keep the loyalty balance the hub sent with a card; anything but a whole number
    from 0 to MAX_POINTS (an older hub sends none) leaves no balance to show."""
    ok = isinstance(points, int) and not isinstance(points, bool) and 0 <= points <= MAX_POINTS
    db.execute(
        "UPDATE customer_cards SET points = ? WHERE card_id = ?",
        [points if ok else None, card_id],
    )


def points(db: Database, card_id: str | None) -> int | None:
    """The loyalty balance this store holds for a card, or None (none sent)."""
    if not card_id:
        return None
    row = db.execute("SELECT points FROM customer_cards WHERE card_id = ?", [card_id]).fetchone()
    return row[0] if row else None


def forget_customer(db: Database, customer_id: str) -> int:
    """Forget every card of a customer (a card renewed, an erasure); how many rows."""
    return db.execute("DELETE FROM customer_cards WHERE customer_id = ?", [customer_id]).rowcount


def forget_unseen(db: Database, days: int, now: str | None = None) -> int:
    """Forget the cards the hub's feed has not sent for ``days`` days, unless their
    customer has an order still open here (app/store/domain/forgetting.py); how many."""
    cutoff = clock.iso(clock.parse_iso(now or clock.now_iso()) - timedelta(days=days))
    # A customer with an order still open here keeps their card (the counter needs it).
    return db.execute(
        """DELETE FROM customer_cards WHERE updated_at < ? AND NOT EXISTS (
               SELECT 1 FROM orders o WHERE o.customer_id = customer_cards.customer_id
               AND o.closed_at IS NULL)""",
        [cutoff],
    ).rowcount
