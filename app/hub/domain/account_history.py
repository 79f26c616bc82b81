"""What a recognised shopper did at a kiosk, attached to their account, and « Mon compte »
in one place (issue 14).

A store sends the card id it recognised, never a name (app/core/protocol.py:
``order.request``'s ``card_id``, ``reservation.created``, ``reservation.closed``,
``cart.sent``). :func:`.cards.customer_for_card` (``ever=True``) maps it to the
customer: any card the customer ever had counts (renewed or revoked since the shopper
scanned it, a queued transaction still names them); an erased customer's cards are
gone, so the action is kept with nobody (``customer_id`` NULL).

The readers gather the account's history by channel: orders (web, or a kiosk of a
store: ``order_requests.order_id``), home deliveries asked for at a kiosk, kiosk
reservations, returns of the account's orders, carts sent to the phone.
"""

from __future__ import annotations

import json
from typing import Any

from app.core import cart_codec
from app.core.clock import iso, now_iso, parse_iso, utcnow
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import customer_feed, customers, order_people, orders
from app.hub.domain.cart_prices import catalog_rows
from app.hub.domain.pii import PiiKeyError

SHOWN = 20  # the newest of each kind « Mon compte » lists


# --- attaching ---------------------------------------------------------------------


def _not_after_now(at: str | None) -> str:
    """A store's instant as a contact, never later than the hub's now (a store's clock
    ahead must not make the data younger)."""
    now = utcnow()
    try:
        moment = parse_iso(at) if at else now
    except ValueError:
        moment = now
    return iso(min(moment, now))


def attach_order(db: Db, order_id: str, customer_id: str, at: str | None = None) -> None:
    """A web order placed at a kiosk for the recognised shopper joins their account; its
    store learns whose it is (the order's change again) and the customer's card, so the
    counter finds it from the card (as customer_feed.order_joined); it is a contact."""
    with hdb.write(db):
        hdb.execute(
            db,
            "UPDATE orders SET customer_id = ? WHERE id = ? AND customer_id IS NULL",
            [customer_id, order_id],
        )
        orders.publish(db, order_id)
        store_id = hdb.scalar(db, "SELECT store_id FROM orders WHERE id = ?", [order_id])
        try:
            customer_feed.publish_card(db, order_people.ring_of(db), customer_id, store_id)
        except PiiKeyError:  # no key ring here (a bare PostgreSQL batch): the order alone
            pass
        customers.touch_contact(db, customer_id, _not_after_now(at))


def attach_delivery(db: Db, delivery_id: str, customer_id: str, at: str | None = None) -> None:
    """A home delivery asked for at a kiosk by the recognised shopper joins their account."""
    with hdb.write(db):
        hdb.execute(
            db,
            "UPDATE delivery_orders SET customer_id = ? WHERE id = ? AND customer_id IS NULL",
            [customer_id, delivery_id],
        )
        customers.touch_contact(db, customer_id, _not_after_now(at))


def record_reservation(
    db: Db,
    store_id: str,
    reservation_id: str,
    code: str,
    customer_id: str | None,
    lines: list[dict[str, Any]],
    created_at: str,
    expires_at: str,
) -> bool:
    """Keep a kiosk reservation (once: the same one sent again changes nothing); whether
    it was new. A visit to the store: a contact for the customer."""
    with hdb.write(db):
        known = hdb.scalar(
            db,
            "SELECT 1 FROM kiosk_reservations WHERE store_id = ? AND id = ?",
            [store_id, reservation_id],
        )
        if known:
            return False
        hdb.insert(
            db,
            "kiosk_reservations",
            {
                "store_id": store_id,
                "id": reservation_id,
                "code": code,
                "customer_id": customer_id,
                "status": "held",
                "lines": json.dumps([{"sku": ln["sku"], "qty": ln["qty"]} for ln in lines]),
                "created_at": created_at,
                "expires_at": expires_at,
                "closed_at": None,
                "received_at": now_iso(),
            },
        )
        if customer_id is not None:
            customers.touch_contact(db, customer_id, _not_after_now(created_at))
    return True


def close_reservation(
    db: Db, store_id: str, reservation_id: str, status: str, closed_at: str
) -> bool:
    """A kiosk reservation collected, released or expired; whether one held was closed
    (an unknown one, or one closed already, changes nothing)."""
    cur = hdb.execute(
        db,
        "UPDATE kiosk_reservations SET status = ?, closed_at = ? "
        "WHERE store_id = ? AND id = ? AND status = 'held'",
        [status, closed_at, store_id, reservation_id],
    )
    return cur.rowcount > 0


def record_sent_cart(
    db: Db, sent_id: str, store_id: str, customer_id: str | None, lines: str, sent_at: str
) -> bool:
    """Keep a cart sent to the phone from a kiosk (``lines`` as the cart codec writes
    them); whether it was new."""
    with hdb.write(db):
        if hdb.scalar(db, "SELECT 1 FROM sent_carts WHERE id = ?", [sent_id]):
            return False
        hdb.insert(
            db,
            "sent_carts",
            {
                "id": sent_id,
                "store_id": store_id,
                "customer_id": customer_id,
                "lines": lines,
                "sent_at": sent_at,
            },
        )
        if customer_id is not None:
            customers.touch_contact(db, customer_id, _not_after_now(sent_at))
    return True


# --- « Mon compte » ----------------------------------------------------------------


def kiosk_orders(db: Db, order_ids: list[str]) -> dict[str, str]:
    """order id -> the name of the store whose kiosk placed it (orders placed online are
    absent)."""
    names = _store_names(db)
    out: dict[str, str] = {}
    for start in range(0, len(order_ids), 500):
        part = order_ids[start : start + 500]
        marks = ", ".join("?" * len(part))
        for row in hdb.rows(
            db,
            f"SELECT order_id, store_id FROM order_requests WHERE order_id IN ({marks})",  # noqa: S608
            part,
        ):
            out[row["order_id"]] = names.get(row["store_id"], row["store_id"])
    return out


def _items(db: Db, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = catalog_rows(db, [ln["sku"] for ln in lines])
    out = []
    for ln in lines:
        row = rows.get(ln["sku"], {})
        out.append(
            {
                "sku": ln["sku"],
                "qty": ln["qty"],
                "name_fr": row.get("name_fr") or ln["sku"],
                "name_en": row.get("name_en") or row.get("name_fr") or ln["sku"],
                "size": row.get("size") or "",
            }
        )
    return out


def _store_names(db: Db) -> dict[str, str]:
    return {r["id"]: r["name"] for r in hdb.rows(db, "SELECT id, name FROM stores")}


def reservations_of(db: Db, customer_id: str) -> list[dict[str, Any]]:
    """The customer's kiosk reservations, newest first: store, items, status, until when."""
    names = _store_names(db)
    found = hdb.rows(
        db,
        "SELECT store_id, id, code, status, lines, created_at, expires_at, closed_at "
        "FROM kiosk_reservations WHERE customer_id = ? ORDER BY created_at DESC, id LIMIT ?",
        [customer_id, SHOWN],
    )
    for row in found:
        row["items"] = _items(db, json.loads(row.pop("lines")))
        row["units"] = sum(i["qty"] for i in row["items"])
        row["store"] = names.get(row["store_id"], row["store_id"])
    return found


def deliveries_of(db: Db, customer_id: str) -> list[dict[str, Any]]:
    """Home deliveries asked for at a kiosk by the recognised customer, newest first."""
    names = _store_names(db)
    found = hdb.rows(
        db,
        "SELECT id, number, status, origin_store_id, total_cents, created_at "
        "FROM delivery_orders WHERE customer_id = ? ORDER BY created_at DESC, id LIMIT ?",
        [customer_id, SHOWN],
    )
    for row in found:
        row["store"] = names.get(row["origin_store_id"], row["origin_store_id"])
    return found


def returns_of(db: Db, customer_id: str) -> list[dict[str, Any]]:
    """Returns made in store on the customer's orders (``order.return``), newest first:
    the order, the store, units, the refund and its store-credit code."""
    names = _store_names(db)
    found = hdb.rows(
        db,
        "SELECT r.return_id, r.order_id, r.store_id, r.lines, r.refund, r.credit_code, r.at, "
        "o.number FROM returns r JOIN orders o ON o.id = r.order_id "
        "WHERE o.customer_id = ? ORDER BY r.at DESC, r.return_id LIMIT ?",
        [customer_id, SHOWN],
    )
    for row in found:
        lines = _return_lines(row.pop("lines"))
        row["units"] = sum(qty for _line, qty in lines)
        row["value_cents"] = _returned_value(db, row.pop("order_id"), lines)
        row["store"] = names.get(row["store_id"], row["store_id"])
    return found


def _return_lines(text: str) -> list[tuple[Any, int]]:
    """``[(order line number, units)]`` of a return's stored lines."""
    try:
        lines = json.loads(text)
        return [
            (ln.get("line"), int(ln.get("qty", 0)))
            for ln in lines
            if isinstance(ln, dict) and isinstance(ln.get("qty"), int)
        ]
    except (ValueError, TypeError, AttributeError):
        return []


def _returned_value(db: Db, order_id: str, lines: list[tuple[Any, int]]) -> int:
    """What the returned units were paid (each line's total, discount included, shared
    by unit), in cents."""
    paid = {
        r["line"]: (r["qty"] * r["price_cents"] - r["discount_cents"], r["qty"])
        for r in hdb.rows(
            db,
            "SELECT line, qty, price_cents, discount_cents FROM order_lines WHERE order_id = ?",
            [order_id],
        )
    }
    total = 0
    for line, qty in lines:
        if line in paid and paid[line][1]:
            total += round(paid[line][0] * qty / paid[line][1])
    return total


def sent_carts_of(db: Db, customer_id: str) -> list[dict[str, Any]]:
    """Carts sent to the phone from a kiosk, newest first, with what they hold."""
    names = _store_names(db)
    found = hdb.rows(
        db,
        "SELECT id, store_id, lines, sent_at FROM sent_carts WHERE customer_id = ? "
        "ORDER BY sent_at DESC, id LIMIT ?",
        [customer_id, SHOWN],
    )
    out = []
    for row in found:
        try:
            lines = cart_codec.decode_lines(row["lines"])
        except cart_codec.CartError:
            continue
        out.append(
            {
                "id": row["id"],
                "store": names.get(row["store_id"], row["store_id"]),
                "sent_at": row["sent_at"],
                "lines": row["lines"],
                "units": sum(line.qty for line in lines),
                "total_cents": sum(line.qty * line.price_cents for line in lines),
            }
        )
    return out
