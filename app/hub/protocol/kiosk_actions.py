"""A recognised shopper's kiosk actions, attached to their account (issue 14):
``reservation.created``, ``reservation.closed`` and ``cart.sent``.

The store sends the card id it verified offline, nothing else about the person; the
transaction may have waited in its outbox for hours. The card maps to its customer
whether it was renewed or revoked since (app/hub/domain/account_history.py); a card
that names nobody (the customer erased meanwhile) is accepted, the action kept with no
person, so nothing parks at the store. A malformed payload is ``invalid_payload``
naming the field (the schema in app/core/protocol.py checked it first).
"""

from __future__ import annotations

from typing import Any

from app.core import cart_codec
from app.core.protocol import RESERVATION_ENDS
from app.hub.database import Db
from app.hub.domain import account_history, cards
from app.hub.domain.cart_prices import catalog_rows
from app.hub.protocol.common import Rejected, invalid, is_instant, parse_id


def _instant(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not is_instant(value):
        raise invalid(f"payload.{name} must be an ISO-8601 instant")
    return value


def _reservation_id(payload: dict[str, Any]) -> str:
    value = payload.get("reservation_id")
    if not isinstance(value, str) or not value.strip():
        raise invalid("payload.reservation_id must be the store's reservation id")
    return value.strip()


def reservation_created(
    db: Db, store_id: str, payload: dict[str, Any], tx_id: str
) -> dict[str, Any]:
    reservation_id = _reservation_id(payload)
    created_at = _instant(payload, "created_at")
    expires_at = _instant(payload, "expires_at")
    lines = payload.get("lines")
    if not isinstance(lines, list) or not lines:
        raise invalid("payload.lines must list what is held")
    seen: set[str] = set()
    for line in lines:
        if line["sku"] in seen:
            raise invalid(f"payload.lines: {line['sku']} is listed twice")
        seen.add(line["sku"])
    unknown = seen - set(catalog_rows(db, seen))
    if unknown:
        raise Rejected("unknown_sku", f"no variant {sorted(unknown)[0]}")
    customer_id = cards.customer_for_card(db, payload.get("card_id"), ever=True)
    new = account_history.record_reservation(
        db,
        store_id,
        reservation_id,
        str(payload.get("code", "")).strip(),
        customer_id,
        lines,
        created_at,
        expires_at,
    )
    return {"attached": customer_id is not None, "new": new}


def reservation_closed(
    db: Db, store_id: str, payload: dict[str, Any], tx_id: str
) -> dict[str, Any]:
    reservation_id = _reservation_id(payload)
    status = payload.get("status")
    if status not in RESERVATION_ENDS:
        raise invalid(f"payload.status must be one of {', '.join(RESERVATION_ENDS)}")
    closed_at = _instant(payload, "closed_at")
    changed = account_history.close_reservation(db, store_id, reservation_id, status, closed_at)
    return {"applied": changed}


def cart_sent(db: Db, store_id: str, payload: dict[str, Any], tx_id: str) -> dict[str, Any]:
    sent_id = parse_id(payload.get("sent_id"))
    if sent_id is None:
        raise invalid("payload.sent_id must be a UUID")
    try:
        lines = cart_codec.check_lines(
            [
                cart_codec.CartLine(ln.get("sku"), ln.get("qty"), ln.get("price_cents"))
                for ln in payload.get("lines") or []
            ]
        )
    except cart_codec.CartError as exc:
        raise invalid(f"payload.lines: {exc}") from None
    if not lines:
        raise invalid("payload.lines must list the cart's lines")
    customer_id = cards.customer_for_card(db, payload.get("card_id"), ever=True)
    new = account_history.record_sent_cart(
        db,
        sent_id,
        store_id,
        customer_id,
        cart_codec.encode_lines(lines),
        _instant(payload, "sent_at"),
    )
    return {"attached": customer_id is not None, "new": new}
