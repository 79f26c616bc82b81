"""What a store learns of a customer: their live card id and first name, and only where
they have an order (issue 14, "stores receive only what they need").

A ``customer_card`` change (app/core/protocol.py) is appended for ONE store, keyed by
the customer id (so an erasure deletes it with the customer: app/hub/domain/erasure.py),
when:

- a card is issued or renewed for a customer with an open or recent order at stores
  (:func:`card_changed`): one change per such store, the new id replacing the old;
- an order of a signed-in customer is placed (:func:`order_joined`): the order's change
  again, now carrying ``customer_id``, and the card for that order's store.

The first name is decrypted here (:mod:`.pii`) and travels only in the store's signed,
authenticated feed; nothing else about the person (no surname, no e-mail) is sent.
A customer with no card yet is sent nothing: the store has nothing to recognise.
"""

from __future__ import annotations

from datetime import timedelta

from app.core.clock import iso, utcnow
from app.core.protocol import CHANGE_CUSTOMER_CARD
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import orders
from app.hub.domain.changes import append_change
from app.hub.domain.pii import KeyRing

#: An order closed (collected, expired, cancelled) still counts this long: the customer
#: may come back to the counter about it (a return).
RECENT = timedelta(days=60)
CLOSED = ("collected", "expired", "cancelled")
FIRST_NAME_COLUMN = "customers.first_name"


def stores_of(db: Db, customer_id: str) -> list[str]:
    """The stores where the customer has an open order, or one placed recently."""
    since = iso(utcnow() - RECENT)
    marks = ", ".join("?" for _ in CLOSED)
    return [
        r["store_id"]
        for r in hdb.rows(
            db,
            "SELECT DISTINCT store_id FROM orders WHERE customer_id = ? "  # noqa: S608 (marks)
            f"AND (status NOT IN ({marks}) OR placed_at >= ?) ORDER BY store_id",
            [customer_id, *CLOSED, since],
        )
    ]


def _live_card(db: Db, customer_id: str) -> str | None:
    return hdb.scalar(
        db,
        """SELECT card_id FROM customer_cards
           WHERE customer_id = ? AND revoked_at IS NULL
           ORDER BY created_at DESC, card_id LIMIT 1""",
        [customer_id],
    )


def card_data(db: Db, ring: KeyRing, customer_id: str) -> dict[str, str | None] | None:
    """The change's data: the live card id and the first name; None without a card."""
    card_id = _live_card(db, customer_id)
    if card_id is None:
        return None
    sealed = hdb.scalar(db, "SELECT first_name_enc FROM customers WHERE id = ?", [customer_id])
    first_name = ring.decrypt(sealed, FIRST_NAME_COLUMN) if sealed else None
    return {"customer_id": customer_id, "card_id": card_id, "first_name": first_name or None}


def publish_card(db: Db, ring: KeyRing, customer_id: str, store_id: str) -> int | None:
    """Append the customer's card change for one store; its seq, or None (no card)."""
    data = card_data(db, ring, customer_id)
    if data is None:
        return None
    return append_change(db, CHANGE_CUSTOMER_CARD, customer_id, data, store_id=store_id)


def card_changed(db: Db, ring: KeyRing, customer_id: str) -> int:
    """A card issued or renewed: tell each store holding the customer's orders; how many."""
    with hdb.write(db):
        sent = [publish_card(db, ring, customer_id, s) for s in stores_of(db, customer_id)]
    return sum(1 for seq in sent if seq is not None)


def order_joined(db: Db, ring: KeyRing, customer_id: str, order_id: str) -> None:
    """An order placed by a signed-in customer: its store learns whose it is (the order's
    change again, with ``customer_id``) and the customer's card."""
    with hdb.write(db):
        store_id = hdb.scalar(
            db,
            "SELECT store_id FROM orders WHERE id = ? AND customer_id = ?",
            [order_id, customer_id],
        )
        if store_id is None:
            return
        orders.publish(db, order_id)
        publish_card(db, ring, customer_id, store_id)


def orders_attached(db: Db, ring: KeyRing, customer_id: str) -> int:
    """Guest orders joined the account at sign-in (same proven address): their stores
    learn whose they are and the customer's card; how many orders were sent again."""
    since = iso(utcnow() - RECENT)
    marks = ", ".join("?" for _ in CLOSED)
    with hdb.write(db):
        order_ids = [
            r["id"]
            for r in hdb.rows(
                db,
                "SELECT id FROM orders WHERE customer_id = ? "  # noqa: S608 (marks)
                f"AND (status NOT IN ({marks}) OR placed_at >= ?) ORDER BY placed_at, id",
                [customer_id, *CLOSED, since],
            )
        ]
        for order_id in order_ids:
            orders.publish(db, order_id)
        for store_id in stores_of(db, customer_id):
            publish_card(db, ring, customer_id, store_id)
    return len(order_ids)
