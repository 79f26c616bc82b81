"""Checking what stores and head office send, at the boundary, before any domain code.

Three layers, so no input ever reaches code that would crash on it:

1. ``app.core.jsonsafe.loads(body, keep_bad_numbers=True)`` parses a body without ever
   failing on one value: a number Python cannot hold faithfully (``1e400``, a
   5,000-digit integer) becomes a :class:`BadNumber` left in place, so the item that
   carries it is refused alone instead of the whole batch. Depth is bounded.
2. :func:`problem` walks any JSON value (iteratively) and names the first thing no
   field of ours may hold: a lone surrogate or a control character in a string or a
   key, a string or a list past a sane size, an integer outside 64 bits, nesting too
   deep. It guards unknown fields too: a newer store may add scalar fields, not
   arbitrary blobs.
3. :func:`check` applies a small declarative schema per transaction type (the
   ``Field`` tables of :mod:`app.core.protocol`, as in docs/openapi.yaml): types,
   required fields, lengths and outer ranges. The handlers keep the checks that need
   the database (order lines, states).

Every refusal is :class:`Invalid` with a message that starts with the field's path
(``payload.lines[2].qty: …``).
"""

from __future__ import annotations

from typing import Any

from app.core.jsonsafe import BadNumber
from app.core.protocol import PAYLOADS, Field
from app.core.text import text_problem

MAX_ITEM_DEPTH = 6  # item > payload > lines > line > (an unknown field's list/object)
MAX_CONTAINER = 1_000
INT64 = (-(2**63), 2**63 - 1)


class Invalid(ValueError):
    """A value refused; ``str(exc)`` names the field (``payload.delta: …``)."""


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


def check_payload(tx_type: str, payload: dict[str, Any]) -> None:
    """Check a transaction's payload: clean JSON, then its type's schema."""
    why = problem(payload, "payload", MAX_ITEM_DEPTH - 1)
    if why:
        raise Invalid(why)
    schema = PAYLOADS.get(tx_type)
    if schema is not None:
        check(payload, schema, "payload")
