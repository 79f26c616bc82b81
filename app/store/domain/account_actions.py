"""A recognised shopper's kiosk actions, queued for their account at the hub (issue 14).

A shopper who scanned « Ma carte » is known to the kiosk by the card id alone (the
session's ``card``, app/store/views/kiosk_card.py). What they do is queued in the
outbox with that id and nothing else about them, in the same transaction as the action,
so it reaches the hub now or, offline, at the next sync; the hub finds the customer
(app/hub/protocol/kiosk_actions.py):

- a reservation: ``reservation.created`` (its lines, until when), then how it ended,
  ``reservation.closed`` (collected, released, expired). The reservation row remembers
  only that it was made for an account (``for_account``), never the card id;
- a cart sent to the phone: ``cart.sent`` (its lines at today's prices), kept in
  « Mon compte » with a link that opens it in the web shop.

An order for what is not here carries the card id in its ``order.request``
(app/store/domain/order_requests.py). Anonymous shoppers' actions send nothing new.
Once the hub has acknowledged one, the queued row forgets the card id (:func:`on_acked`).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlite_utils import Database

from app.core import cart_codec, clock
from app.core import db as dbmod
from app.core.protocol import CART_SENT, MAX_CARD_ID, RESERVATION_CLOSED, RESERVATION_CREATED
from app.store.domain import carts, outbox


def card_or_none(card_id: Any) -> str | None:
    """The card id if it looks like one (the session's value), else None."""
    if isinstance(card_id, str) and card_id.strip() and len(card_id) <= MAX_CARD_ID:
        return card_id.strip()
    return None


def reservation_created(
    db: Database,
    reservation_id: str,
    code: str,
    card_id: str | None,
    held: dict[str, int],
    created_at: str,
    expires_at: str,
) -> None:
    """In the reservation's transaction: queue it for the recognised shopper's account."""
    card_id = card_or_none(card_id)
    if card_id is None:
        return
    db.execute("UPDATE reservations SET for_account = 1 WHERE id = ?", [reservation_id])
    outbox.enqueue(
        db,
        RESERVATION_CREATED,
        {
            "reservation_id": reservation_id,
            "code": code,
            "card_id": card_id,
            "lines": [{"sku": s, "qty": q} for s, q in sorted(held.items()) if q > 0],
            "created_at": created_at,
            "expires_at": expires_at,
        },
    )


def reservation_closed(db: Database, reservation_id: str, status: str, closed_at: str) -> None:
    """In the closing transaction: tell the account how it ended (if it was made for one)."""
    row = db.execute("SELECT for_account FROM reservations WHERE id = ?", [reservation_id])
    found = row.fetchone()
    if not found or not found[0]:
        return
    outbox.enqueue(
        db,
        RESERVATION_CLOSED,
        {"reservation_id": reservation_id, "status": status, "closed_at": closed_at},
    )


def today_lines(db: Database, lines: list[list]) -> list[cart_codec.CartLine]:
    """A kiosk cart's ``[sku, qty, price then]`` lines at today's prices, as sent to the
    phone (a line no longer sold is left out)."""
    today = []
    for sku, qty, _then in lines:
        price = carts.base_price(db, sku)
        if price is not None:
            today.append(cart_codec.CartLine(sku, qty, price))
    return today


def cart_sent(db: Database, card_id: Any, lines: list[cart_codec.CartLine]) -> str | None:
    """A cart sent to the phone by a recognised shopper: queued for their account; the
    transaction id, or None (nobody recognised, or nothing to send)."""
    card_id = card_or_none(card_id)
    if card_id is None or not lines:
        return None
    sent_id = str(uuid.uuid4())
    payload = {
        "sent_id": sent_id,
        "card_id": card_id,
        "lines": [{"sku": ln.sku, "qty": ln.qty, "price_cents": ln.price_cents} for ln in lines],
        "sent_at": clock.now_iso(),
    }
    with dbmod.write(db):
        outbox.enqueue(db, CART_SENT, payload, id=sent_id)
    return sent_id


def on_acked(db: Database, tx_id: str, payload: dict[str, Any], result: Any, at: str) -> None:
    """The hub has it: the store forgets the card id it queued (the acknowledgement hook
    of these types and of ``order.request``, app/store/domain/acks.py)."""
    if "card_id" not in payload:
        return
    kept = {k: v for k, v in payload.items() if k != "card_id"}
    db.execute(
        "UPDATE outbox SET payload = ? WHERE id = ?",
        [json.dumps(kept, separators=(",", ":")), tx_id],
    )
