"""The kiosk's order for what is not in this store: the shopper's details checked, an
``order.request`` queued for the hub, and where it is since.

The request goes through the outbox like every transaction, so it leaves now when the
hub is reachable and later when it is not; the hub creates the web order exactly once.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from sqlite_utils import Database

from app.core import cart_codec, clock, pricing
from app.core import db as dbmod
from app.core.protocol import (
    MAX_ADDRESS_LINE,
    MAX_CITY,
    MAX_CUSTOMER_NAME,
    MAX_EMAIL,
    MAX_POSTCODE,
    ORDER_REQUEST,
    POSTCODE_PATTERN,
)
from app.store.domain import account_actions, outbox
from app.store.domain.carts import revoke_locally
from app.store.domain.staff import audit

_POSTCODE = re.compile(POSTCODE_PATTERN)
#: The longest value of each field the hub accepts: the checks below and the kiosk's
#: form (``maxlength``) use them, so the kiosk never queues what the hub would refuse.
FORM_LIMITS = {
    "name": MAX_CUSTOMER_NAME,
    "email": MAX_EMAIL,
    "line1": MAX_ADDRESS_LINE,
    "postcode": MAX_POSTCODE,
    "city": MAX_CITY,
}


def check_customer(
    fulfilment: str, name: str, email: str, address: dict[str, str] | None
) -> dict[str, Any]:
    """Validated customer fields for an order request; raises ValueError(field name)."""
    if fulfilment not in ("pickup", "home"):
        raise ValueError("fulfilment")
    name, email = (name or "").strip(), (email or "").strip()
    if not name or len(name) > MAX_CUSTOMER_NAME:
        raise ValueError("name")
    local, _, domain = email.partition("@")
    if len(email) > MAX_EMAIL or not local or "." not in domain or "@" in domain or " " in email:
        raise ValueError("email")
    out: dict[str, Any] = {"fulfilment": fulfilment, "customer_name": name, "customer_email": email}
    if fulfilment == "home":
        address = {k: (v or "").strip() for k, v in (address or {}).items()}
        for key in ("line1", "city"):
            if not address.get(key) or len(address[key]) > FORM_LIMITS[key]:
                raise ValueError(key)
        if not _POSTCODE.fullmatch(address.get("postcode", "")):
            raise ValueError("postcode")
        out["address"] = {k: address[k] for k in ("line1", "postcode", "city")}
    return out


def queue_order_request(
    db: Database,
    lines: list[tuple[str, int]],
    customer: dict[str, Any],
    *,
    device: str = "",
    request_id: str | None = None,
    cart_id: str | None = None,
    shown: pricing.PricedCart | None = None,
    card_id: str | None = None,
) -> str:
    """Queue an ``order.request`` for the hub (lines not available here); its id.

    Written to the outbox like every transaction, so it goes now when the hub is
    reachable and later when it is not; the hub creates the web order exactly once.
    ``request_id`` (the UUID the form was rendered with) makes a double tap one order.
    A cart brought by QR code is closed here at once (and at the hub with the order),
    so scanning it again cannot order it twice. ``card_id``: the recognised shopper's
    card (its id alone), so the hub joins the order to their account.
    """
    if not lines or len(lines) > cart_codec.MAX_LINES:
        raise ValueError("lines")
    request_id = str(uuid.UUID(request_id)) if request_id else str(uuid.uuid4())
    payload = {
        "request_id": request_id,
        **customer,
        "lines": [{"sku": sku, "qty": qty} for sku, qty in lines],
        "priced_at": clock.now_iso(),  # the hub prices the request as shown, at this instant
    }
    if shown is not None:
        # What the screen said per line: the hub honours it when lower than its own price
        # (a promotion withdrawn while this store was offline).
        totals = {line.sku: line.total_cents for line in shown.lines}
        for line in payload["lines"]:
            if line["sku"] in totals:
                line["shown_total_cents"] = totals[line["sku"]]
    card_id = account_actions.card_or_none(card_id)
    if card_id is not None:
        payload["card_id"] = card_id
    if cart_id and cart_codec.is_cart_id(cart_id):
        payload["cart_id"] = cart_id  # the hub closes the online cart with the order
    with dbmod.write(db):
        if db.execute("SELECT 1 FROM outbox WHERE id = ?", [request_id]).fetchone():
            return request_id  # the same form sent twice (a double tap): queued once
        outbox.enqueue(db, ORDER_REQUEST, payload, id=request_id)
        if "cart_id" in payload:
            revoke_locally(db, cart_id)
        # No personal data in the audit log: the hub holds the customer's details.
        audit(
            db,
            None,
            "cart.order_requested",
            device,
            {"request_id": request_id, "lines": len(lines), "fulfilment": customer["fulfilment"]},
        )
    return request_id


def order_request_state(db: Database, request_id: str) -> dict[str, Any] | None:
    """Where a queued order request is: ``queued``, ``sent`` (with the hub's result) or
    ``refused`` (parked, with its reason)."""
    row = db.execute(
        "SELECT acked_at, parked_reason, result FROM outbox WHERE id = ?", [request_id]
    ).fetchone()
    if row is None:
        return None
    acked_at, parked, result = row
    if parked:
        return {"state": "refused", "reason": parked}
    if acked_at:
        try:
            answer = json.loads(result) if result else {}
        except ValueError:
            answer = {}
        return {"state": "sent", "result": answer}
    return {"state": "queued"}
