"""Taking a person out of the hub's tables (RGPD by design, issue 14): customers erased
with every row naming them, orders and home deliveries kept as accounting records but
anonymised, old orders deleted whole. Plain statements over lists of ids, in the
caller's transaction: :mod:`.retention` runs them daily; the customer's own erasure and
head office's answer to a request can run the same.

Tables are found by their columns where that is the rule (every table with a
``customer_id``, every table with an ``order_id``), so a table added later is covered
without being listed here; the exceptions are listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from app.core.clock import now_iso
from app.core.protocol import CHANGE_CUSTOMER_ERASED, CHANGE_ORDER
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import order_people
from app.hub.domain import orders as hub_orders
from app.hub.domain.changes import append_change
from app.hub.domain.pii import KeyRing, PiiKeyError

_CHUNK = 500
#: Tables whose ``customer_id`` rows are detached, not deleted, when a customer goes
#: (home deliveries: asked for at a kiosk by a recognised shopper, accounting records;
#: store credit: what is left on a code stays spendable by whoever holds the code).
DETACHED = frozenset({"orders", "customers", "delivery_orders", "store_credits"})
#: Tables whose ``order_id`` is set to NULL, not deleted, when an order goes (the loyalty
#: ledger: a live customer's points earned on it stay, so balance and ledger agree).
ORDER_NULLED = frozenset({"carts", "loyalty_ledger"})


def chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    """``ids`` a few hundred at a time (an IN list stays within every driver's limits)."""
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def each(db: Db, sql: str, ids: Sequence[str], before: Sequence[Any] = ()) -> None:
    """Run ``sql`` (with ``{ids}`` for an IN list) over ``ids`` a chunk at a time."""
    for part in chunks(ids):
        marks = ", ".join("?" * len(part))
        hdb.execute(db, sql.format(ids=marks), [*before, *part])


def tables_with(db: Db, column: str) -> list[str]:
    return sorted(t for t, cols in hdb.table_columns(db).items() if column in cols)


def anonymise_orders(db: Db, order_ids: Sequence[str]) -> None:
    """Orders kept for the accounts, the person gone: ``customer_id`` NULL, name, e-mail
    and pickup code blanked, a proxy's name on their hand-overs too, their e-mails
    deleted; amounts, lines and dates stay. The order's feed history (which named the
    person) becomes one anonymised change, which also overwrites the stores' copies."""
    each(
        db,
        "UPDATE orders SET customer_id = NULL, customer_name = '', customer_email = '', "
        "customer_name_enc = NULL, customer_email_enc = NULL, customer_email_idx = NULL, "
        "pickup_code = '' WHERE id IN ({ids})",
        order_ids,
    )
    each(db, "UPDATE handovers SET collector_name = NULL WHERE order_id IN ({ids})", order_ids)
    each(db, "DELETE FROM notifications WHERE order_id IN ({ids})", order_ids)
    for order_id in order_ids:
        seq = hub_orders.publish(db, order_id)
        hdb.execute(
            db,
            "DELETE FROM changes WHERE kind = ? AND key = ? AND seq < ?",
            [CHANGE_ORDER, order_id, seq],
        )


def anonymise_deliveries(db: Db, delivery_ids: Sequence[str], now: str) -> None:
    """Home deliveries kept for the accounts: name, e-mail and address blanked."""
    each(
        db,
        "UPDATE delivery_orders SET customer_name = '', customer_email = '', "
        "address_line1 = '', address_postcode = '', address_city = '', "
        "customer_name_enc = NULL, customer_email_enc = NULL, customer_email_idx = NULL, "
        "address_enc = NULL, updated_at = ? "
        "WHERE id IN ({ids})",
        delivery_ids,
        [now],
    )


def _held_by(db: Db, sql: str, customer_id: str) -> list[str]:
    return [r["id"] for r in hdb.rows(db, sql, [customer_id])]


def erase_customers(db: Db, customer_ids: Sequence[str], emails: Sequence[str] = ()) -> None:
    """Delete the customers and every row naming them: feed changes keyed by their id or
    a card id, sign-in codes for their address, rows of any table with a
    ``customer_id`` (but :data:`DETACHED`: their orders are detached; anonymise them
    first with :func:`anonymise_orders`), and e-mails sent to ``emails`` (lower case).

    Each customer leaves one ``customer_erased`` change in the feed, ids only (their
    id, card ids, the orders still theirs): every store forgets their cards and blanks
    its copies of those orders (app/store/domain/customer_erasure.py)."""
    each(db, "DELETE FROM notifications WHERE lower(customer_email) IN ({ids})", emails)
    each(  # the mails sealed for them: by the address's blind index (order_people)
        db,
        "DELETE FROM notifications WHERE customer_email_idx IN "
        "(SELECT email_idx FROM customers WHERE id IN ({ids}))",
        customer_ids,
    )
    held: dict[str, tuple[list[str], list[str]]] = {}
    for cid in customer_ids:
        held[cid] = (
            _held_by(
                db,
                "SELECT card_id AS id FROM customer_cards WHERE customer_id = ? ORDER BY card_id",
                cid,
            ),
            _held_by(db, "SELECT id FROM orders WHERE customer_id = ? ORDER BY id", cid),
        )
    cards = [card for found, _orders in held.values() for card in found]
    # Telling the stores to forget is the feed's erasure change, not a deleted history.
    each(db, "DELETE FROM changes WHERE key IN ({ids})", [*customer_ids, *cards])
    each(
        db,
        "DELETE FROM customer_login_codes WHERE email_idx IN "
        "(SELECT email_idx FROM customers WHERE id IN ({ids}))",
        customer_ids,
    )
    for table in tables_with(db, "customer_id"):
        if table not in DETACHED:
            each(db, f"DELETE FROM {table} WHERE customer_id IN ({{ids}})", customer_ids)  # noqa: S608
    deliveries = [  # a kiosk's home delivery for a recognised shopper: kept, anonymised
        r["id"]
        for part in chunks(customer_ids)
        for r in hdb.rows(
            db,
            f"SELECT id FROM delivery_orders WHERE customer_id IN ({', '.join('?' * len(part))})",  # noqa: S608
            list(part),
        )
    ]
    each(
        db,
        "UPDATE delivery_orders SET customer_id = NULL WHERE customer_id IN ({ids})",
        customer_ids,
    )
    anonymise_deliveries(db, deliveries, now_iso())
    each(db, "UPDATE orders SET customer_id = NULL WHERE customer_id IN ({ids})", customer_ids)
    each(
        db,
        "UPDATE store_credits SET customer_id = NULL WHERE customer_id IN ({ids})",
        customer_ids,
    )
    each(db, "DELETE FROM customers WHERE id IN ({ids})", customer_ids)
    for cid, (card_ids, order_ids) in held.items():
        append_change(
            db,
            CHANGE_CUSTOMER_ERASED,
            cid,
            {"customer_id": cid, "card_ids": card_ids, "order_ids": order_ids},
        )


def erase_customer(db: Db, ring: KeyRing, customer_id: str) -> dict[str, int] | None:
    """One person's erasure (their own request in the web shop, or head office's answer
    to one): their orders from every channel (the account's, and guest orders and home
    deliveries placed with the same address) detached and anonymised, amounts kept; the
    account and every row naming it deleted (:func:`erase_customers`). In one write
    transaction. None if there is no such customer; else counts (no personal data).

    If the account's e-mail does not open (sealed under a key no longer in the key
    file), its guest orders, deliveries and mails are still found by the address's
    blind index (its key is never rotated), but rows kept in clear cannot be matched:
    the result then holds ``email_unreadable: 1`` (the erasure may be partial), for the
    caller's journal and for head office to see."""
    with hdb.write(db):
        row = hdb.one(
            db, "SELECT id, email_enc, email_idx FROM customers WHERE id = ?", [customer_id]
        )
        if row is None:
            return None
        unreadable = 0
        try:
            email = (ring.decrypt(row["email_enc"], "customers.email") or "").strip().lower()
        except PiiKeyError:
            email, unreadable = "", 1
        orders = set(_held_by(db, "SELECT id FROM orders WHERE customer_id = ?", customer_id))
        deliveries: list[str] = []
        if email:  # by the address's blind index (their name and e-mail are sealed)
            orders.update(order_people.ids_by_email(db, ring, "orders", email))
            deliveries = order_people.ids_by_email(db, ring, "delivery_orders", email)
        elif row["email_idx"]:  # the sealed ones at least, by the index stored
            orders.update(_ids_by_index(db, "orders", row["email_idx"]))
            deliveries = _ids_by_index(db, "delivery_orders", row["email_idx"])
        erase_customers(db, [customer_id], [email] if email else [])
        anonymise_orders(db, sorted(orders))
        anonymise_deliveries(db, deliveries, now_iso())
    done = {"orders_anonymised": len(orders), "deliveries_anonymised": len(deliveries)}
    if unreadable:
        done["email_unreadable"] = 1
    return done


def _ids_by_index(db: Db, table: str, email_idx: str) -> list[str]:
    assert table in ("orders", "delivery_orders")
    sql = f"SELECT id FROM {table} WHERE customer_email_idx = ? ORDER BY id"  # noqa: S608
    return [r["id"] for r in hdb.rows(db, sql, [email_idx])]


def delete_orders(db: Db, order_ids: Sequence[str]) -> None:
    """Delete orders whole: lines, hand-overs, returns, e-mails, feed changes, and any
    other row with their ``order_id`` (but :data:`ORDER_NULLED`, which lets go of it)."""
    for table in tables_with(db, "order_id"):
        if table in ORDER_NULLED:
            each(db, f"UPDATE {table} SET order_id = NULL WHERE order_id IN ({{ids}})", order_ids)  # noqa: S608
        elif table != "orders":
            each(db, f"DELETE FROM {table} WHERE order_id IN ({{ids}})", order_ids)  # noqa: S608
    each(db, "DELETE FROM changes WHERE kind = ? AND key IN ({ids})", order_ids, [CHANGE_ORDER])
    each(db, "DELETE FROM orders WHERE id IN ({ids})", order_ids)
