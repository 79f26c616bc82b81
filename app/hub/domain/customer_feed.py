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

The change also carries ``personal``: what the kiosk may show a shopper who consented
(app/hub/domain/personal.py), or null without consent (the store forgets what it had).
Each store's last payload is fingerprinted in ``customer_personal`` (with the seq of
the change that carried it, deleted from the feed once superseded: the hub keeps no
stale copy of what is personal, none at all after a withdrawal), so
:func:`personal_changed` (consent given or withdrawn, an order collected, a product
seen online: :func:`view_recorded`, at most every quarter of an hour) and
:func:`refresh` (the daily ``kiosk hub personal refresh``) send it again only where it
changed, and a withdrawal reaches every store that ever had it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from app.core.clock import iso, utcnow
from app.core.protocol import CHANGE_CUSTOMER_CARD
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import consent, customer_export, loyalty, orders, personal
from app.hub.domain.changes import append_change
from app.hub.domain.pii import KeyRing

#: An order closed (collected, expired, cancelled) still counts this long: the customer
#: may come back to the counter about it (a return).
RECENT = timedelta(days=60)
CLOSED = ("collected", "expired", "cancelled")
#: A product view sends the customer's payload to their stores at most this often.
VIEW_SEND_EVERY = timedelta(minutes=15)
FIRST_NAME_COLUMN = "customers.first_name"


def stores_of(db: Db, customer_id: str) -> list[str]:
    """The stores where the customer has an open order, or one placed recently, and
    those where their card was looked up recently (scanned by a walk-in shopper:
    app/hub/domain/card_lookups.py, ``customer_card_stores``)."""
    since = iso(utcnow() - RECENT)
    marks = ", ".join("?" for _ in CLOSED)
    return [
        r["store_id"]
        for r in hdb.rows(
            db,
            "SELECT store_id FROM orders WHERE customer_id = ? "  # noqa: S608 (marks)
            f"AND (status NOT IN ({marks}) OR placed_at >= ?) "
            "UNION SELECT store_id FROM customer_card_stores "
            "WHERE customer_id = ? AND looked_up_at >= ? ORDER BY store_id",
            [customer_id, *CLOSED, since, customer_id, since],
        )
    ]


def live_card(db: Db, customer_id: str) -> str | None:
    """The customer's live card id, or None (none issued yet, or all revoked): the one
    query of it (``cards.current_card`` is this function)."""
    return hdb.scalar(
        db,
        """SELECT card_id FROM customer_cards
           WHERE customer_id = ? AND revoked_at IS NULL
           ORDER BY created_at DESC, card_id LIMIT 1""",
        [customer_id],
    )


def card_data(db: Db, ring: KeyRing, customer_id: str) -> dict[str, Any] | None:
    """The change's data: the live card id, the first name and what is personal (None
    without consent); None without a card."""
    card_id = live_card(db, customer_id)
    if card_id is None:
        return None
    sealed = hdb.scalar(db, "SELECT first_name_enc FROM customers WHERE id = ?", [customer_id])
    first_name = ring.decrypt(sealed, FIRST_NAME_COLUMN) if sealed else None
    return {
        "customer_id": customer_id,
        "card_id": card_id,
        "first_name": first_name or None,
        "personal": personal.payload(db, customer_id),
        # Their loyalty balance, shown to them once recognised (not a suggestion: no
        # consent needed; earned and spent in every channel, app/hub/domain/loyalty.py).
        "points": loyalty.balance(db, customer_id),
    }


def publish_card(
    db: Db,
    ring: KeyRing,
    customer_id: str,
    store_id: str,
    data: dict[str, Any] | None = None,
) -> int | None:
    """Append the customer's card change for one store (``data`` as :func:`card_data`
    made it, or made here); its seq, or None (no card)."""
    data = data if data is not None else card_data(db, ring, customer_id)
    if data is None:
        return None
    seq = append_change(db, CHANGE_CUSTOMER_CARD, customer_id, data, store_id=store_id)
    # The change that carried their last payload to this store is superseded by this
    # one (same kind and key): deleted, so no stale copy stays in the feed.
    previous = hdb.scalar(
        db,
        "SELECT seq FROM customer_personal WHERE customer_id = ? AND store_id = ?",
        [customer_id, store_id],
    )
    if previous is not None:
        hdb.execute(
            db,
            "DELETE FROM changes WHERE seq = ? AND kind = ? AND key = ?",
            [previous, CHANGE_CUSTOMER_CARD, customer_id],
        )
    if data["personal"] is None:
        hdb.execute(
            db,
            "DELETE FROM customer_personal WHERE customer_id = ? AND store_id = ?",
            [customer_id, store_id],
        )
    else:
        hdb.upsert(
            db,
            "customer_personal",
            {
                "customer_id": customer_id,
                "store_id": store_id,
                "digest": personal.digest(data["personal"]),
                "seq": seq,
                "published_at": iso(utcnow()),
            },
            ["customer_id", "store_id"],
        )
    return seq


def card_changed(db: Db, ring: KeyRing, customer_id: str) -> int:
    """A card issued or renewed, or its loyalty balance moved: tell each store holding
    the customer's orders; how many."""
    with hdb.write(db):
        data = card_data(db, ring, customer_id)
        stores = stores_of(db, customer_id) if data is not None else []
        for store_id in stores:
            publish_card(db, ring, customer_id, store_id, data)
    return len(stores)


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
        data = card_data(db, ring, customer_id)
        for store_id in stores_of(db, customer_id) if data is not None else []:
            publish_card(db, ring, customer_id, store_id, data)
    return len(order_ids)


def personal_changed(db: Db, ring: KeyRing, customer_id: str, *, force: bool = False) -> int:
    """Send the customer's card again where its ``personal`` part changed: to the stores
    holding their orders (:func:`stores_of`), and, when it is now null, to every store
    that had a payload (it must forget it). Without consent the views recorded for
    suggestions are deleted too. Inside the caller's transaction if any; how many
    changes were appended. ``force``: send even where the fingerprint is the same."""
    with hdb.write(db):
        allowed = consent.personal_allowed(db, customer_id)
        if allowed:  # their offers' segments, even with no store to tell
            personal.remember_categories(db, customer_id)
        else:
            personal.forget(db, customer_id)
        held = {
            r["store_id"]: r["digest"]
            for r in hdb.rows(
                db,
                "SELECT store_id, digest FROM customer_personal WHERE customer_id = ?",
                [customer_id],
            )
        }
        targets = set(stores_of(db, customer_id)) | (set() if allowed else set(held))
        if not targets:  # no store holds or needs anything: nothing computed
            return 0
        data = card_data(db, ring, customer_id)
        if data is None:  # no card: the stores hold nothing to update
            return 0
        new = personal.digest(data["personal"])
        sent = 0
        for store_id in sorted(targets):
            old = held.get(store_id, personal.digest(None))
            if force or old != new:
                publish_card(db, ring, customer_id, store_id, data)
                sent += 1
    return sent


def set_consent(
    db: Db,
    ring: KeyRing,
    customer_id: str,
    given: bool,
    channel: str = "web",
    **journal: Any,
) -> bool:
    """Give or withdraw consent (:func:`.consent.set_consent`, ``journal`` its keyword
    arguments) and tell the stores (:func:`personal_changed`) in ONE write transaction:
    if the stores cannot be told (a key that does not open the first name), nothing
    changes and the error rises, so no store keeps suggestions after a withdrawal the
    hub recorded. Whether consent changed."""
    with hdb.write(db):
        changed = consent.set_consent(db, customer_id, given, channel, **journal)
        if changed:
            personal_changed(db, ring, customer_id)
    return changed


def correct_names(db: Db, ring: KeyRing, customer_id: str, first: Any, last: Any) -> int:
    """Rectification (:func:`.customer_export.correct_names`) and the stores holding the
    customer's card told the new first name, in one write transaction; how many stores."""
    with hdb.write(db):
        customer_export.correct_names(db, ring, customer_id, first, last)
        return card_changed(db, ring, customer_id)


def view_recorded(db: Db, ring: KeyRing, customer_id: str) -> int:
    """A product seen online by a customer who consented: their stores learn it now
    (« vu récemment en ligne » the same day), at most once per :data:`VIEW_SEND_EVERY`;
    the daily refresh sends the rest. How many changes were appended."""
    since = iso(utcnow() - VIEW_SEND_EVERY)
    recent = hdb.scalar(
        db,
        "SELECT 1 FROM customer_personal WHERE customer_id = ? AND published_at >= ? LIMIT 1",
        [customer_id, since],
    )
    return 0 if recent else personal_changed(db, ring, customer_id)


def refresh(
    db: Db, ring: KeyRing, progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """The daily job: products bought together rebuilt, then every customer who
    consented (or whose stores still hold a payload) recomputed, their card sent again
    only where the payload changed. Counts: ``pairs``, ``customers``, ``changed``
    (customers whose stores were told), ``changes`` (appended)."""
    pairs = personal.rebuild_pairs(db)
    ids = [
        r["id"]
        for r in hdb.rows(
            db,
            "SELECT id FROM customers WHERE consent_personal = 1 UNION "
            "SELECT DISTINCT customer_id FROM customer_personal ORDER BY 1",
        )
    ]
    changed = changes = 0
    for n, customer_id in enumerate(ids, start=1):
        sent = personal_changed(db, ring, customer_id)  # one transaction per customer
        changed += 1 if sent else 0
        changes += sent
        if progress is not None:
            progress(n, len(ids))
    return {"pairs": pairs, "customers": len(ids), "changed": changed, "changes": changes}
