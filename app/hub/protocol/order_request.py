"""The ``order.request`` transaction: a shopper at a kiosk orders what the store lacks.

``fulfilment: "pickup"`` places a web order to collect in the sending store (the goods
are shipped there, so no stock is checked nor reserved); ``"home"`` records a home
delivery (``delivery_orders``). Like every handler it runs in the batch's savepoint
(:mod:`.transactions`), validates everything before writing, and raises ``Rejected``
(listed in :mod:`.handlers`).
``request_id`` is a PRIMARY KEY (``order_requests``): the same request sent again
under another transaction id gets the first answer and creates nothing.

Both are priced as the kiosk showed them (DESIGN.md, invariant 4): with the sending
store's promotions, at ``priced_at`` (when the kiosk showed the prices), not when the
hub happens to receive a request an offline store queued hours before.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core import cart_codec as cartcodec
from app.core import pricing
from app.core.clock import iso, now_iso, utcnow
from app.core.pricing import PricedCart
from app.core.protocol import (
    FULFILMENTS,
    MAX_ADDRESS_LINE,
    MAX_CITY,
    MAX_CUSTOMER_NAME,
    MAX_EMAIL,
    MAX_SHOWN_CENTS,
    POSTCODE_PATTERN,
)
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import account_history, cards, keys, order_people
from app.hub.domain.cart_prices import catalog_rows, price_items
from app.hub.domain.carts import MAX_LINES, MAX_QTY, close_cart, get_cart
from app.hub.domain.orders import OrderError, create_order
from app.hub.domain.registry import ID_ALPHABET
from app.hub.protocol.common import Rejected, canonical_json, invalid, parse_id

# As lenient as the kiosk's form (app/store/domain/order_requests.check_customer): what it lets
# through must not come back as a parked rejection.
_POSTCODE = re.compile(POSTCODE_PATTERN)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]*\.[^@\s]*")
DELIVERY_ID_LENGTH = 16
#: How old ``priced_at`` may be: an offline store's queue is sent within days, and a
#: stale promotion price must not be claimable forever.
PRICED_AT_MAX_AGE = timedelta(days=14)
#: How far ahead: the clock skew the signed API tolerates (docs/protocol.md).
PRICED_AT_MAX_AHEAD = timedelta(seconds=300)


def _text(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise invalid(f"payload.{name} must be a string of 1 to {limit} characters")
    return value.strip()


def _customer(payload: dict[str, Any]) -> tuple[str, str]:
    name = _text(payload.get("customer_name"), "customer_name", MAX_CUSTOMER_NAME)
    email = _text(payload.get("customer_email"), "customer_email", MAX_EMAIL)
    if not _EMAIL.fullmatch(email):
        raise invalid("payload.customer_email must be an e-mail address")
    return name, email


def _address(payload: dict[str, Any], fulfilment: str) -> dict[str, str] | None:
    address = payload.get("address")
    if fulfilment == "pickup":
        if address is not None:
            raise invalid("payload.address is for home delivery only")
        return None
    if not isinstance(address, dict):
        raise invalid("payload.address {line1, postcode, city} is needed for home delivery")
    postcode = address.get("postcode")
    if not isinstance(postcode, str) or not _POSTCODE.fullmatch(postcode.strip()):
        raise invalid("payload.address.postcode must be a postcode")
    return {
        "line1": _text(address.get("line1"), "address.line1", MAX_ADDRESS_LINE),
        "postcode": postcode.strip(),
        "city": _text(address.get("city"), "address.city", MAX_CITY),
    }


def _lines(db: Db, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{sku, qty}]``, each sku once and known to the hub."""
    items = payload.get("lines")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_LINES:
        raise invalid(f"payload.lines must be an array of 1 to {MAX_LINES} lines")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            raise invalid("every line must be an object")
        sku, qty = item.get("sku"), item.get("qty")
        if not isinstance(sku, str) or not sku or len(sku) > 40:
            raise invalid("every line needs a sku")
        if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= MAX_QTY:
            raise invalid(f"quantities are 1 to {MAX_QTY}")
        if sku in seen:
            raise invalid(f"{sku} is listed twice")
        seen.add(sku)
        shown = item.get("shown_total_cents")
        if shown is not None and (
            not isinstance(shown, int)
            or isinstance(shown, bool)
            or not 0 <= shown <= MAX_SHOWN_CENTS
        ):
            raise invalid("shown_total_cents is a whole number of cents")
        out.append({"sku": sku, "qty": qty, "shown_total_cents": shown})
    rows = catalog_rows(db, seen)
    for line in out:
        if line["sku"] not in rows:
            raise Rejected("unknown_sku", f"no variant {line['sku']}")
    return out


def _priced_at(payload: dict[str, Any], now: datetime) -> datetime:
    """When the kiosk showed the prices: ``payload.priced_at``, else the hub's ``now``."""
    text = payload.get("priced_at")
    if text is None:
        return now
    try:
        if not isinstance(text, str) or len(text) > 40:
            raise ValueError(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError(text)
    except ValueError:
        raise invalid("payload.priced_at must be an ISO-8601 instant with a time zone") from None
    if not now - PRICED_AT_MAX_AGE <= moment <= now + PRICED_AT_MAX_AHEAD:
        raise invalid(
            f"payload.priced_at {text} is outside the hub's window ({iso(now - PRICED_AT_MAX_AGE)}"
            f" to {iso(now + PRICED_AT_MAX_AHEAD)}): more than 14 days old, or ahead of the "
            "hub's clock; check the store's clock"
        )
    return moment


def _price(db: Db, store_id: str, lines: list[dict[str, Any]], at: datetime) -> PricedCart:
    """The lines priced as the sending store's kiosk showed them at ``at``.

    The hub prices with the promotions published now, as they apply at ``at``. A
    promotion unpublished or edited since (while the store was offline) is not there any
    more, so a line's ``shown_total_cents`` (what the kiosk screen said) is honoured when
    it is lower: the shopper never pays more than the price displayed. A higher shown
    total is not: the hub's price stands.
    """
    items = pricing.cart_items(db, [(ln["sku"], ln["qty"]) for ln in lines])
    priced = price_items(db, items, store_id=store_id, now=at)
    shown = {ln["sku"]: ln.get("shown_total_cents") for ln in lines}
    out = []
    for line in priced.lines:
        kiosk = shown.get(line.sku)
        if kiosk is not None and kiosk < line.total_cents:
            line = replace(
                line,
                total_cents=kiosk,
                discount_cents=line.unit_cents * line.qty - kiosk,
                label_fr=line.label_fr or "Prix affiché en magasin",
                label_en=line.label_en or "Price shown in store",
            )
        out.append(line)
    return PricedCart(
        tuple(out),
        sum(line.total_cents for line in out),
        sum(line.discount_cents for line in out),
    )


def _new_delivery_ids(db: Db) -> tuple[str, str]:
    while True:
        delivery_id = "d-" + "".join(secrets.choice(ID_ALPHABET) for _ in range(DELIVERY_ID_LENGTH))
        number = "LD-" + "".join(secrets.choice("0123456789") for _ in range(8))
        taken = hdb.one(
            db,
            "SELECT 1 AS taken FROM delivery_orders WHERE id = ? OR number = ?",
            [delivery_id, number],
        )
        if taken is None:
            return delivery_id, number


def _home_delivery(
    db: Db,
    store_id: str,
    request_id: str,
    name: str,
    email: str,
    address: dict[str, str],
    lines: list[dict[str, Any]],
    priced: PricedCart,
) -> dict[str, Any]:
    rows = catalog_rows(db, [ln["sku"] for ln in lines])
    stored = [
        {
            "sku": p.sku,
            "qty": p.qty,
            "unit_cents": p.unit_cents,
            "total_cents": p.total_cents,
            "discount_cents": p.discount_cents,
        }
        for p in priced.lines
    ]
    delivery_id, number = _new_delivery_ids(db)
    at = now_iso()
    ring = order_people.ring_of(db)  # the name, e-mail and address kept sealed
    hdb.insert(
        db,
        "delivery_orders",
        {
            "id": delivery_id,
            "number": number,
            "request_id": request_id,
            "origin_store_id": store_id,
            **order_people.sealed_delivery_person(ring, name, email, address),
            "lines": json.dumps(stored),
            "total_cents": priced.total_cents,
            "status": "requested",
            "created_at": at,
            "updated_at": at,
        },
    )
    items = "\n".join(
        f"- {rows[ln['sku']]['name_fr']} ({rows[ln['sku']]['size']}, "
        f"{rows[ln['sku']]['colour_fr']}) × {ln['qty']}"
        for ln in lines
    )
    # A "placed" message with no order: the delivery has no shop page (order_id NULL).
    body = (
        f"Bonjour {name},\n\nNous avons bien reçu votre demande de livraison {number} à "
        f"l'adresse :\n{address['line1']}\n{address['postcode']} {address['city']}\n\n"
        f"{items}\n\nNous vous écrirons à l'expédition.\n\n---\nWe received your home "
        f"delivery request {number}; we will write when it ships."
    )
    hdb.insert(
        db,
        "notifications",
        {
            "order_id": None,
            "kind": "placed",
            "subject": f"Livraison {number} demandée",
            **order_people.sealed_mail(ring, email, body),
            "created_at": at,
        },
    )
    return {"delivery_id": delivery_id, "number": number}


def order_request(db: Db, store_id: str, payload: dict[str, Any], tx_id: str) -> dict[str, Any]:
    request_id = parse_id(payload.get("request_id"))
    if request_id is None:
        raise invalid("payload.request_id must be a UUID")
    digest = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
    known = hdb.execute(
        db,
        "SELECT store_id, payload_hash, result FROM order_requests WHERE request_id = ?",
        [request_id],
    ).fetchone()
    if known is not None:
        if known[0] != store_id or known[1] != digest:
            raise Rejected("conflict", "this request_id was used for another request")
        # The same request under another transaction id: the first answer, nothing new
        # (even if the catalog changed since: it was accepted then).
        return json.loads(known[2])
    fulfilment = payload.get("fulfilment")
    if fulfilment not in FULFILMENTS:
        raise invalid("payload.fulfilment must be pickup or home")
    name, email = _customer(payload)
    address = _address(payload, fulfilment)
    lines = _lines(db, payload)
    cart_id = payload.get("cart_id")
    if cart_id is not None and not cartcodec.is_cart_id(cart_id):
        raise invalid("payload.cart_id must be a cart id")
    now = utcnow()
    priced = _price(db, store_id, lines, _priced_at(payload, now))
    if fulfilment == "pickup":
        try:
            made = create_order(
                db,
                store_id,
                name,
                email,
                lines,
                private_key=_signing_key(),
                now=now,
                reserve=False,
                check_stock=False,
                priced=priced,
            )
        except OrderError as exc:  # validated above; kept as a refusal, never a 500
            reason = "unknown_sku" if exc.code == "unknown_sku" else "invalid_payload"
            raise Rejected(reason, str(exc)) from exc
        result = {"order_id": made["order"]["id"], "number": made["order"]["number"]}
    else:
        assert address is not None
        result = _home_delivery(db, store_id, request_id, name, email, address, lines, priced)
    if cart_id is not None:
        # The cart the shopper brought by QR code is now ordered: no second order of it,
        # online or at another kiosk (every store hears the revocation).
        cart = get_cart(db, cart_id)
        if cart is not None and cart["status"] == "open":
            close_cart(db, cart_id, "ordered", order_id=result.get("order_id"), now=now)
    # A recognised shopper (issue 14): the card id alone joins the order to the account.
    customer_id = cards.customer_for_card(db, payload.get("card_id"), ever=True)
    if customer_id is not None and "order_id" in result:
        account_history.attach_order(db, result["order_id"], customer_id, iso(now))
    elif customer_id is not None:
        account_history.attach_delivery(db, result["delivery_id"], customer_id, iso(now))
    hdb.execute(
        db,
        "INSERT INTO order_requests (request_id, store_id, fulfilment, payload_hash, result, "
        "tx_id, created_at, order_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            request_id,
            store_id,
            fulfilment,
            digest,
            canonical_json(result),
            tx_id,
            now_iso(),
            result.get("order_id"),
        ],
    )
    return result


#: The hub's data directory (where its signing key lives) for the batch being applied:
#: set by :func:`signing_dir` (``transactions.apply_batch(..., data_dir=)``).
_SIGNING_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "hub_signing_dir", default=None
)


@contextlib.contextmanager
def signing_dir(data_dir: str | Path) -> Iterator[None]:
    """Within this block, order requests sign with the key in ``data_dir``, and seal
    the people of orders with its personal-data key (:func:`.order_people.keys_dir`)."""
    token = _SIGNING_DIR.set(Path(data_dir))
    try:
        with order_people.keys_dir(data_dir):
            yield
    finally:
        _SIGNING_DIR.reset(token)


def _signing_key() -> Ed25519PrivateKey:
    """The hub's signing key (keys.key_path), in the data directory given to
    :func:`signing_dir` (the database, SQLite file or PostgreSQL, says nothing of it)."""
    data_dir = _SIGNING_DIR.get()
    if data_dir is None:
        raise RuntimeError(
            "the hub's data directory (its signing key) is unknown: "
            "apply transactions through transactions.apply_batch(..., data_dir=)"
        )
    return keys.current_private_key(data_dir)
