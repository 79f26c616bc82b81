"""Everything the hub holds about one customer, for their right of access (RGPD art. 15)
and portability (art. 20), issue 14: the account (names and e-mail opened from their
seals), their orders from every channel (the account's, and guest orders and home
deliveries placed with the same address) with their lines, their cards, their consent,
the e-mails sent to them, their web-shop sessions (dates only), and the rows of any
other table keyed by their ``customer_id`` (consent history, loyalty points...).

:func:`export` builds a plain dict (JSON-ready, sorted, dates as ISO strings) and reads
only rows that are this customer's: by ``customer_id``, or by the address the account
proved (lower case). The web shop shows it and offers it as a download; head office
exports it for a request received by post or e-mail.

:func:`correct_names` is the right of rectification: first and last name, validated,
sealed again (app/hub/domain/pii.py).
"""

from __future__ import annotations

from typing import Any

from app.core.clock import now_iso
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import order_people
from app.hub.domain.erasure import tables_with
from app.hub.domain.pii import KeyRing, PiiKeyError

FORMAT = "kiosk-customer-export/1"
#: Tables with a ``customer_id`` read above in their own section; any other (consent
#: history, loyalty ledger, kiosk reservations, carts sent from a kiosk, a table added
#: later) is exported whole under ``records``.
_SECTIONS = frozenset(
    {"customers", "orders", "customer_cards", "customer_sessions", "delivery_orders"}
)
MAX_NAME = 80


class NameRefused(ValueError):
    """A name refused: ``code`` is ``too_long`` or ``bad_characters``."""

    def __init__(self, code: str, field: str) -> None:
        super().__init__(code)
        self.code = code
        self.field = field


def _open(ring: KeyRing, value: str | None, column: str) -> str | None:
    try:
        return ring.decrypt(value, column) if value else None
    except PiiKeyError:
        return None


def clean_name(raw: Any, field: str) -> str | None:
    """A name as typed, spaces folded; None when empty. NameRefused if it is too long or
    holds control characters or markup."""
    value = " ".join(str(raw or "").split())
    if len(value) > MAX_NAME:
        raise NameRefused("too_long", field)
    if any(ord(c) < 32 or c in "<>{}\\\u007f" for c in value):
        raise NameRefused("bad_characters", field)
    return value or None


def correct_names(db: Db, ring: KeyRing, customer_id: str, first: Any, last: Any) -> None:
    """Store corrected names, sealed (NameRefused on bad input: nothing stored then)."""
    first_name = clean_name(first, "first_name")
    last_name = clean_name(last, "last_name")
    with hdb.write(db):
        hdb.execute(
            db,
            "UPDATE customers SET first_name_enc = ?, last_name_enc = ? WHERE id = ?",
            [
                ring.encrypt(first_name, "customers.first_name"),
                ring.encrypt(last_name, "customers.last_name"),
                customer_id,
            ],
        )


def _orders(db: Db, ring: KeyRing, customer_id: str, email: str) -> list[dict[str, Any]]:
    """The account's orders and the guest orders placed with its address (found by the
    blind index), their name and e-mail opened (order_people: sealed at rest)."""
    ids = set(order_people.ids_by_email(db, ring, "orders", email)) if email else set()
    ids.update(
        r[0]
        for r in hdb.execute(
            db, "SELECT id FROM orders WHERE customer_id = ?", [customer_id]
        ).fetchall()
    )
    people = order_people.names_of(db, ring, ids)
    rows = [
        hdb.one(
            db,
            "SELECT o.id, o.number, o.status, o.store_id, s.name AS store_name, "
            "o.placed_at, o.promised_at, o.ready_at, o.collected_at, o.expired_at "
            "FROM orders o LEFT JOIN stores s ON s.id = o.store_id WHERE o.id = ?",
            [order_id],
        )
        for order_id in ids
    ]
    rows = sorted((r for r in rows if r is not None), key=lambda r: (r["placed_at"], r["number"]))
    out = []
    for row in rows:
        person = people.get(row["id"], order_people.Person("", ""))
        row = {
            **{k: row[k] for k in ("id", "number", "status", "store_id", "store_name")},
            "customer_name": person.name,
            "customer_email": person.email,
            **{
                k: row[k]
                for k in ("placed_at", "promised_at", "ready_at", "collected_at", "expired_at")
            },
        }
        row["lines"] = hdb.rows(
            db,
            "SELECT l.sku, l.qty, l.price_cents, l.qty_collected, l.qty_returned "
            "FROM order_lines l WHERE l.order_id = ? ORDER BY l.line",
            [row["id"]],
        )
        row["channel"] = "click_and_collect"
        out.append(row)
    return out


def _deliveries(db: Db, ring: KeyRing, email: str, customer_id: str) -> list[dict[str, Any]]:
    """Home deliveries asked for with the address, or at a kiosk by the customer
    recognised by their card; name, e-mail and address opened."""
    out = []
    found = set(order_people.ids_by_email(db, ring, "delivery_orders", email) if email else [])
    found.update(
        r["id"]
        for r in hdb.rows(db, "SELECT id FROM delivery_orders WHERE customer_id = ?", [customer_id])
    )
    for delivery_id in sorted(found):
        row = hdb.one(db, "SELECT * FROM delivery_orders WHERE id = ?", [delivery_id])
        if row is None:
            continue
        person = order_people.delivery_person(ring, row)
        out.append(
            {
                **{k: row[k] for k in ("id", "number", "origin_store_id")},
                "customer_name": person["customer_name"],
                "customer_email": person["customer_email"],
                "address_line1": person["address"].get("line1", ""),
                "address_postcode": person["address"].get("postcode", ""),
                "address_city": person["address"].get("city", ""),
                **{k: row[k] for k in ("lines", "total_cents", "status", "created_at")},
            }
        )
    return sorted(out, key=lambda d: (d["created_at"], d["number"]))


_MESSAGE = (
    "SELECT id, order_id, kind, subject, body, body_enc, created_at, sent_at FROM notifications "
)


def _messages(db: Db, ring: KeyRing, email: str, order_ids: list[str]) -> list[dict[str, Any]]:
    """The mails sent to the address, and those of the account's orders; bodies opened."""
    found = {
        m["id"]: m
        for mid in (order_people.ids_by_email(db, ring, "notifications", email) if email else [])
        for m in hdb.rows(db, _MESSAGE + "WHERE id = ?", [mid])
    }
    for oid in order_ids:
        for m in hdb.rows(db, _MESSAGE + "WHERE order_id = ? ORDER BY id", [oid]):
            found.setdefault(m["id"], m)
    out = []
    for m in found.values():
        body = order_people.mail_of(ring, m)["body"]
        out.append({**{k: v for k, v in m.items() if k != "body_enc"}, "body": body})
    return out


def export(db: Db, ring: KeyRing, customer_id: str) -> dict[str, Any] | None:
    """What the hub holds about this customer, or None if there is no such customer."""
    with hdb.read(db):
        row = hdb.one(db, "SELECT * FROM customers WHERE id = ?", [customer_id])
        if row is None:
            return None
        email = _open(ring, row["email_enc"], "customers.email") or ""
        key = email.strip().lower()
        orders = _orders(db, ring, customer_id, key)
        deliveries = _deliveries(db, ring, key, customer_id)
        order_ids = [o["id"] for o in orders]
        messages = _messages(db, ring, key, order_ids)
        cards = hdb.rows(
            db,
            "SELECT card_id, created_at, revoked_at FROM customer_cards WHERE customer_id = ? "
            "ORDER BY created_at, card_id",
            [customer_id],
        )
        sessions = hdb.rows(
            db,
            "SELECT created_at, last_seen_at, revoked_at FROM customer_sessions "
            "WHERE customer_id = ? ORDER BY created_at",
            [customer_id],
        )
        records = {
            table: hdb.rows(
                db,
                f"SELECT * FROM {table} WHERE customer_id = ?",  # noqa: S608 (a table name)
                [customer_id],
            )
            for table in tables_with(db, "customer_id")
            if table not in _SECTIONS
        }
    for rows in records.values():
        for record in rows:
            record.pop("customer_id", None)
    for delivery in deliveries:
        delivery["channel"] = "home_delivery"
    return {
        "format": FORMAT,
        "exported_at": now_iso(),
        "account": {
            "id": row["id"],
            "email": email,
            "first_name": _open(ring, row["first_name_enc"], "customers.first_name"),
            "last_name": _open(ring, row["last_name_enc"], "customers.last_name"),
            "created_at": row["created_at"],
            "last_contact_at": row["last_contact_at"],
            "loyalty_points": int(row["loyalty_points"] or 0),
            "retention_warned_at": row["retention_warned_at"],
        },
        "consent": {
            "personal_offers": bool(row["consent_personal"]),
            "given_at": row["consent_at"],
        },
        "orders": orders,
        "home_deliveries": deliveries,
        "cards": cards,
        "messages": sorted(messages, key=lambda m: m["id"]),
        "sessions": sessions,
        "records": records,
    }
