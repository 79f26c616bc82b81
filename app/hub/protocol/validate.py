"""Checking what stores and head office send, at the boundary, before any domain code.

Three layers, so no input ever reaches code that would crash on it:

1. :func:`loads` parses a body without ever failing on one value: a number Python
   cannot hold faithfully (``1e400``, a 5,000-digit integer) becomes a
   :class:`BadNumber` left in place, so the item that carries it is refused alone
   instead of the whole batch. Depth is bounded (no ``RecursionError``).
2. :func:`problem` walks any JSON value (iteratively) and names the first thing no
   field of ours may hold: a lone surrogate or a control character in a string or a
   key, a string or a list past a sane size, an integer outside 64 bits, nesting too
   deep. It guards unknown fields too: a newer store may add scalar fields, not
   arbitrary blobs.
3. :func:`check` applies a small declarative schema (:class:`Field`) per transaction
   type, mirroring docs/openapi.yaml: types, required fields, lengths and outer
   ranges. The handlers keep the checks that need the database (order lines, states).

Every refusal is :class:`Invalid` with a message that starts with the field's path
(``payload.lines[2].qty: …``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from app.core.text import text_problem
from app.web import jsonguard

MAX_BODY_DEPTH = jsonguard.MAX_DEPTH
MAX_ITEM_DEPTH = 6  # item > payload > lines > line > (an unknown field's list/object)
MAX_CONTAINER = 1_000
INT64 = (-(2**63), 2**63 - 1)


class Invalid(ValueError):
    """A value refused; ``str(exc)`` names the field (``payload.delta: …``)."""


class BadNumber:
    """A JSON number kept as its text: out of range for a float, or absurdly long."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 24 else f"{self.text[:20]}… ({len(self.text)})"
        return f"<number {shown}>"


def _parse_int(text: str) -> int | BadNumber:
    # 20 characters hold every 64-bit integer with its sign; longer is never ours, and
    # int() of thousands of digits is slow (and past 4,300 refused by Python).
    return int(text) if len(text) <= 20 else BadNumber(text)


def _parse_float(text: str) -> float | BadNumber:
    if len(text) > 40:
        return BadNumber(text)
    value = float(text)
    return value if math.isfinite(value) else BadNumber(text)


def loads(data: bytes | str, max_depth: int = MAX_BODY_DEPTH) -> Any:
    """Parse a JSON body; ``ValueError`` (never anything else) when it is not JSON at all
    or nests deeper than ``max_depth``. Odd numbers become :class:`BadNumber`."""
    return jsonguard.loads(data, max_depth, parse_int=_parse_int, parse_float=_parse_float)


def json_default(value: Any) -> Any:
    """For ``json.dumps(default=…)``: a :class:`BadNumber` as a marked string."""
    if isinstance(value, BadNumber):
        return {"$bad_number": value.text[:100]}
    raise TypeError(f"{type(value).__name__} is not JSON")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, BadNumber):
        return "a number out of range"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def problem(value: Any, path: str, max_depth: int = MAX_ITEM_DEPTH) -> str | None:
    """The first thing in ``value`` no field may hold, as ``path: why``; None if clean."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, level = stack.pop()
        if isinstance(item, str):
            why = text_problem(item)
            if why:
                return f"{where}: {why}"
        elif isinstance(item, BadNumber):
            return f"{where}: the number {item!r} is out of range"
        elif isinstance(item, int) and not isinstance(item, bool):
            if not INT64[0] <= item <= INT64[1]:
                return f"{where}: the integer is outside 64 bits"
        elif isinstance(item, (dict, list)):
            if level >= max_depth:
                return f"{where}: nested too deeply"
            if len(item) > MAX_CONTAINER:
                return f"{where}: more than {MAX_CONTAINER} elements"
            if isinstance(item, dict):
                for key, child in item.items():
                    why = text_problem(key, 200)
                    if why:
                        return f"{where}: a key: {why}"
                    stack.append((child, f"{where}.{key}", level + 1))
            else:
                stack.extend((child, f"{where}[{i}]", level + 1) for i, child in enumerate(item))
    return None


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


def _check_value(value: Any, spec: Field, where: str) -> None:
    if spec.type == "str":
        if not isinstance(value, str):
            raise Invalid(f"{where}: expected a string, got {_kind(value)}")
        if spec.choices and value not in spec.choices:
            raise Invalid(f"{where}: must be one of {', '.join(spec.choices)}")
        if spec.max_len is not None and len(value) > spec.max_len:
            raise Invalid(f"{where}: at most {spec.max_len} characters (got {len(value)})")
        if len(value.strip()) < spec.min_len:
            raise Invalid(f"{where}: must not be empty")
    elif spec.type == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(f"{where}: expected an integer, got {_kind(value)}")
        low = INT64[0] if spec.low is None else spec.low
        high = INT64[1] if spec.high is None else spec.high
        if not low <= value <= high:
            raise Invalid(f"{where}: must be an integer from {low} to {high}")
    elif spec.type == "list":
        if not isinstance(value, list):
            raise Invalid(f"{where}: expected a list, got {_kind(value)}")
        if len(value) < spec.min_len:
            raise Invalid(f"{where}: at least {spec.min_len} element(s) needed")
        if spec.max_len is not None and len(value) > spec.max_len:
            raise Invalid(f"{where}: at most {spec.max_len} elements (got {len(value)})")
        if spec.item is not None:
            for i, element in enumerate(value):
                if not isinstance(element, dict):
                    raise Invalid(f"{where}[{i}]: expected an object, got {_kind(element)}")
                check(element, spec.item, f"{where}[{i}]")
    elif spec.type == "object":
        if not isinstance(value, dict):
            raise Invalid(f"{where}: expected an object, got {_kind(value)}")
        if spec.item is not None:
            check(value, spec.item, where)
    elif spec.type == "bool":
        if not isinstance(value, bool):
            raise Invalid(f"{where}: expected true or false, got {_kind(value)}")
    else:  # pragma: no cover - a schema typo
        raise AssertionError(spec.type)


def check(obj: dict[str, Any], schema: dict[str, Field], path: str) -> None:
    """Check ``obj`` against ``schema``; raise :class:`Invalid` naming the first field at
    fault. Fields the schema does not name are left to :func:`problem`."""
    for name, spec in schema.items():
        where = f"{path}.{name}"
        if name not in obj:
            if spec.required:
                raise Invalid(f"{where}: missing (required)")
            continue
        if obj[name] is None:
            if spec.required or not spec.nullable:
                raise Invalid(f"{where}: must not be null")
            continue
        _check_value(obj[name], spec, where)


def _str(max_len: int, required: bool = False, **kw: Any) -> Field:
    return Field("str", required=required, max_len=max_len, **kw)


_ORDER_ID = _str(40, required=True, min_len=1)
_UUID = _str(45, required=True, min_len=1)
_STAFF = 64
_MAX_UNITS = 1_000_000

#: The payload of each transaction type (docs/protocol.md; docs/openapi.yaml says the
#: same). Outer bounds only: the handlers say "at most 3 left" with the order in hand.
PAYLOADS: dict[str, dict[str, Field]] = {
    "stock.movement": {
        "sku": _str(100, required=True, min_len=1),
        "delta": Field("int", required=True, low=-_MAX_UNITS, high=_MAX_UNITS),
        "kind": _str(
            20,
            required=True,
            choices=("adjusted", "picked_up", "returned", "reserved", "released", "sold"),
        ),
        "reason": _str(500, nullable=False),
        "store_id": _str(64),
    },
    "order.ready": {
        "order_id": _ORDER_ID,
        "lines": Field(
            "list",
            required=True,
            min_len=1,
            max_len=200,
            item={
                "line": Field("int", required=True),
                "qty_ready": Field("int", required=True, low=0, high=_MAX_UNITS),
            },
        ),
        "shelf_slot": _str(20, required=True, min_len=1),
        "staff": _str(_STAFF, required=True, min_len=1),
    },
    "order.handover": {
        "handover_id": _UUID,
        "order_id": _ORDER_ID,
        "lines": Field(
            "list",
            required=True,
            min_len=1,
            max_len=200,
            item={
                "line": Field("int", required=True),
                "qty": Field("int", required=True, low=0, high=_MAX_UNITS),
            },
        ),
        "collector": _str(20, required=True, choices=("customer", "proxy")),
        "collector_name": _str(80),
        "method": _str(20, required=True, choices=("qr", "code", "override")),
        "override_reason": _str(500),
        "staff": _str(_STAFF, required=True, min_len=1),
        "manager": _str(_STAFF),
    },
    "order.expired": {"order_id": _ORDER_ID},
    "order.reminder": {"order_id": _ORDER_ID, "expires_at": _str(40, required=True)},
    "order.return": {
        "return_id": _UUID,
        "order_id": _str(40, min_len=1),
        "lines": Field(
            "list",
            required=True,
            min_len=1,
            max_len=200,
            item={
                "line": Field("int"),
                "sku": _str(100, required=True, min_len=1),
                "qty": Field("int", required=True, low=1, high=999),
                "condition": _str(20, required=True, choices=("resellable", "damaged")),
            },
        ),
        "reason": _str(500, nullable=False),
        "refund": _str(20, required=True, choices=("original_payment", "store_credit")),
        "staff": _str(_STAFF, required=True, min_len=1),
        "manager": _str(_STAFF),
    },
    "order.request": {
        "request_id": _UUID,
        "fulfilment": _str(20, required=True, choices=("pickup", "home")),
        "customer_name": _str(200, required=True, min_len=1),
        "customer_email": _str(254, required=True, min_len=1),
        "address": Field(
            "object",
            item={
                "line1": _str(120, required=True, min_len=1),
                "postcode": _str(10, required=True, min_len=1),
                "city": _str(80, required=True, min_len=1),
            },
        ),
        "lines": Field(
            "list",
            required=True,
            min_len=1,
            max_len=200,
            item={
                "sku": _str(40, required=True, min_len=1),
                "qty": Field("int", required=True, low=1, high=_MAX_UNITS),
                "shown_total_cents": Field("int", low=0, high=10**9),
            },
        ),
        "priced_at": _str(40),
        "cart_id": _str(64),
    },
}


def check_payload(tx_type: str, payload: dict[str, Any]) -> None:
    """Check a transaction's payload: clean JSON, then its type's schema."""
    why = problem(payload, "payload", MAX_ITEM_DEPTH - 1)
    if why:
        raise Invalid(why)
    schema = PAYLOADS.get(tx_type)
    if schema is not None:
        check(payload, schema, "payload")
