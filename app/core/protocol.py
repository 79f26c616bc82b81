"""The sync protocol's rules, written once (docs/protocol.md): transaction types, their
fields and limits, the allowed values and the rejection reasons.

The store reads them when it writes a transaction and checks what staff typed; the hub
(``app.hub.protocol.validate``) checks every transaction a store sends against
:data:`PAYLOADS`. docs/openapi.yaml says the same for other implementations.
Flask-free, no I/O: data only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------- types

STOCK_MOVEMENT = "stock.movement"
ORDER_READY = "order.ready"
ORDER_HANDOVER = "order.handover"
ORDER_EXPIRED = "order.expired"
ORDER_REMINDER = "order.reminder"
ORDER_RETURN = "order.return"
ORDER_REQUEST = "order.request"
#: A recognised shopper withdrew consent to personal suggestions at a kiosk (issue 14):
#: the card id only; the hub finds the customer and journals it (channel ``kiosk``).
CONSENT_REVOKED = "consent.revoked"
#: A recognised shopper's kiosk actions attached to their account (issue 14): the card
#: id only, never a name. A reservation made at a kiosk, then how it ended; a cart sent
#: to the phone, kept in « Mon compte ».
RESERVATION_CREATED = "reservation.created"
RESERVATION_CLOSED = "reservation.closed"
CART_SENT = "cart.sent"
TYPES = (
    STOCK_MOVEMENT,
    ORDER_READY,
    ORDER_HANDOVER,
    ORDER_EXPIRED,
    ORDER_REMINDER,
    ORDER_RETURN,
    ORDER_REQUEST,
    CONSENT_REVOKED,
    RESERVATION_CREATED,
    RESERVATION_CLOSED,
    CART_SENT,
)

# --------------------------------------------------------------------------- limits

#: Transactions per POST /api/v1/transactions (beyond: 413 batch_too_large).
MAX_BATCH = 500
#: Units one stock movement or one line may move.
MAX_UNITS = 1_000_000
MAX_REASON = 500  # a stock movement's or a return's reason, an override's reason
MAX_SKU = 100
MAX_ORDER_ID = 40
MAX_UUID = 45  # a UUID as text, with room for braces and a urn: prefix
MAX_INSTANT = 40  # an ISO-8601 instant
MAX_STAFF_ID = 64
MAX_SHELF_SLOT = 20
MAX_COLLECTOR_NAME = 80
MAX_TX_LINES = 200  # lines in one order transaction
MAX_RETURN_QTY = 999  # units of one line returned at once
MAX_SHOWN_CENTS = 10**9
MAX_CARD_ID = 64  # a « Ma carte » card id (random, no personal data)
#: The « Ma carte » token (app/core/tokens.py): its kind, and the claim holding the card
#: id (the hub mints it, app/hub/domain/cards.py; a store verifies it offline,
#: app/store/domain/customer_cards.py).
CARD_KIND = "card"
CARD_CLAIM = "c"
#: ``order.request``'s customer: what the kiosk's form lets through, the hub accepts.
MAX_CUSTOMER_NAME = 80
MAX_EMAIL = 254
MAX_ADDRESS_LINE = 120
MAX_CITY = 80
MAX_POSTCODE = 10
POSTCODE_PATTERN = rf"[0-9A-Za-z -]{{3,{MAX_POSTCODE}}}"  # letters, digits, spaces, hyphens
#: The schema's outer bound on ``customer_name``: a longer name is refused by the schema
#: check, a name over :data:`MAX_CUSTOMER_NAME` by the ``order.request`` handler.
MAX_CUSTOMER_NAME_FIELD = 200

#: Parked transactions one health report lists (``parked_count`` says how many there are).
MAX_PARKED = 50

# --------------------------------------------------------------------------- values

STOCK_KINDS = ("adjusted", "picked_up", "returned", "reserved", "released", "sold")
COLLECTORS = ("customer", "proxy")
HANDOVER_METHODS = ("qr", "code", "override")
CONDITIONS = ("resellable", "damaged")
REFUNDS = ("original_payment", "store_credit")
FULFILMENTS = ("pickup", "home")
#: How a kiosk reservation ended (``reservation.closed``).
RESERVATION_ENDS = ("collected", "released", "expired")
MAX_RESERVATION_ID = 40
MAX_RESERVATION_CODE = 20

#: What head office may do with a store's parked transaction (an ``outbox_command``).
COMMAND_ACTIONS = ("retry", "discard")

# --------------------------------------------------------------------------- change feed

#: The kinds of change in the hub's feed (``GET /api/v1/changes``), each applied by the
#: store as an upsert keyed by ``(kind, key)``.
CHANGE_STORE = "store"
CHANGE_CATEGORY = "category"
CHANGE_PRODUCT = "product"
CHANGE_STOCK = "stock"
CHANGE_HUB_KEY = "hub_key"
CHANGE_ORDER = "order"
CHANGE_REVOCATION = "revocation"
CHANGE_OUTBOX_COMMAND = "outbox_command"
CHANGE_PROMOTION = "promotion"
#: A customer's live card id and first name, for one store where they have an order.
CHANGE_CUSTOMER_CARD = "customer_card"
#: A customer erased at the hub (issue 14): ids only (``customer_id``, ``card_ids``,
#: ``order_ids``), no personal data; the store forgets its cards and blanks its orders.
CHANGE_CUSTOMER_ERASED = "customer_erased"
CHANGE_KINDS = (
    CHANGE_STORE,
    CHANGE_CATEGORY,
    CHANGE_PRODUCT,
    CHANGE_STOCK,
    CHANGE_HUB_KEY,
    CHANGE_ORDER,
    CHANGE_REVOCATION,
    CHANGE_OUTBOX_COMMAND,
    CHANGE_PROMOTION,
    CHANGE_CUSTOMER_ERASED,
    CHANGE_CUSTOMER_CARD,
)

#: The stable codes of a ``rejected`` result.
REASONS = (
    "conflict",
    "unknown_type",
    "invalid_payload",
    "unknown_sku",
    "wrong_store",
    "invalid_id",
    "unknown_order",
    "invalid_state",
)

# --------------------------------------------------------------------------- schemas


@dataclass(frozen=True)
class Field:
    """One field: ``type`` is str, int, bool, list or object; null counts as absent
    unless ``required``; ``item`` is the schema of a list's objects (or an object's)."""

    type: str
    required: bool = False
    nullable: bool = True
    min_len: int = 0
    max_len: int | None = None
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()
    item: dict[str, Field] | None = None


def _str(max_len: int, required: bool = False, **kw: Any) -> Field:
    return Field("str", required=required, max_len=max_len, **kw)


def _lines(**item: Field) -> Field:
    return Field("list", required=True, min_len=1, max_len=MAX_TX_LINES, item=item)


_ORDER_ID = _str(MAX_ORDER_ID, required=True, min_len=1)
_UUID = _str(MAX_UUID, required=True, min_len=1)
_STAFF = _str(MAX_STAFF_ID, required=True, min_len=1)
_MANAGER = _str(MAX_STAFF_ID)

#: The payload of each transaction type. Outer bounds only: the hub's handlers say
#: "at most 3 left" with the order in hand.
PAYLOADS: dict[str, dict[str, Field]] = {
    STOCK_MOVEMENT: {
        "sku": _str(MAX_SKU, required=True, min_len=1),
        "delta": Field("int", required=True, low=-MAX_UNITS, high=MAX_UNITS),
        "kind": _str(20, required=True, choices=STOCK_KINDS),
        "reason": _str(MAX_REASON, nullable=False),
        "store_id": _str(64),
    },
    ORDER_READY: {
        "order_id": _ORDER_ID,
        "lines": _lines(
            line=Field("int", required=True),
            qty_ready=Field("int", required=True, low=0, high=MAX_UNITS),
        ),
        "shelf_slot": _str(MAX_SHELF_SLOT, required=True, min_len=1),
        "staff": _STAFF,
    },
    ORDER_HANDOVER: {
        "handover_id": _UUID,
        "order_id": _ORDER_ID,
        "lines": _lines(
            line=Field("int", required=True),
            qty=Field("int", required=True, low=0, high=MAX_UNITS),
        ),
        "collector": _str(20, required=True, choices=COLLECTORS),
        "collector_name": _str(MAX_COLLECTOR_NAME),
        "method": _str(20, required=True, choices=HANDOVER_METHODS),
        "override_reason": _str(MAX_REASON),
        "staff": _STAFF,
        "manager": _MANAGER,
    },
    ORDER_EXPIRED: {"order_id": _ORDER_ID},
    ORDER_REMINDER: {"order_id": _ORDER_ID, "expires_at": _str(MAX_INSTANT, required=True)},
    ORDER_RETURN: {
        "return_id": _UUID,
        "order_id": _str(MAX_ORDER_ID, min_len=1),
        "lines": _lines(
            line=Field("int"),
            sku=_str(MAX_SKU, required=True, min_len=1),
            qty=Field("int", required=True, low=1, high=MAX_RETURN_QTY),
            condition=_str(20, required=True, choices=CONDITIONS),
        ),
        "reason": _str(MAX_REASON, nullable=False),
        "refund": _str(20, required=True, choices=REFUNDS),
        "staff": _STAFF,
        "manager": _MANAGER,
    },
    ORDER_REQUEST: {
        "request_id": _UUID,
        "fulfilment": _str(20, required=True, choices=FULFILMENTS),
        "customer_name": _str(MAX_CUSTOMER_NAME_FIELD, required=True, min_len=1),
        "customer_email": _str(MAX_EMAIL, required=True, min_len=1),
        "address": Field(
            "object",
            item={
                "line1": _str(MAX_ADDRESS_LINE, required=True, min_len=1),
                "postcode": _str(MAX_POSTCODE, required=True, min_len=1),
                "city": _str(MAX_CITY, required=True, min_len=1),
            },
        ),
        "lines": _lines(
            sku=_str(40, required=True, min_len=1),
            qty=Field("int", required=True, low=1, high=MAX_UNITS),
            shown_total_cents=Field("int", low=0, high=MAX_SHOWN_CENTS),
        ),
        "priced_at": _str(MAX_INSTANT),
        "cart_id": _str(64),
        # The recognised shopper's card (issue 14): the order joins their account.
        "card_id": _str(MAX_CARD_ID, min_len=1),
    },
    CONSENT_REVOKED: {"card_id": _str(MAX_CARD_ID, required=True, min_len=1)},
    RESERVATION_CREATED: {
        "reservation_id": _str(MAX_RESERVATION_ID, required=True, min_len=1),
        "code": _str(MAX_RESERVATION_CODE, required=True, min_len=1),
        "card_id": _str(MAX_CARD_ID, required=True, min_len=1),
        "lines": _lines(
            sku=_str(MAX_SKU, required=True, min_len=1),
            qty=Field("int", required=True, low=1, high=MAX_UNITS),
        ),
        "created_at": _str(MAX_INSTANT, required=True, min_len=1),
        "expires_at": _str(MAX_INSTANT, required=True, min_len=1),
    },
    RESERVATION_CLOSED: {
        "reservation_id": _str(MAX_RESERVATION_ID, required=True, min_len=1),
        "status": _str(20, required=True, choices=RESERVATION_ENDS),
        "closed_at": _str(MAX_INSTANT, required=True, min_len=1),
    },
    CART_SENT: {
        "sent_id": _UUID,
        "card_id": _str(MAX_CARD_ID, required=True, min_len=1),
        "lines": _lines(
            sku=_str(40, required=True, min_len=1),
            qty=Field("int", required=True, low=1, high=MAX_UNITS),
            price_cents=Field("int", required=True, low=0, high=MAX_SHOWN_CENTS),
        ),
        "sent_at": _str(MAX_INSTANT, required=True, min_len=1),
    },
}
