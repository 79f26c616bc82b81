"""JSON parsing that cannot crash a server: bounded depth, no NaN or Infinity.

Python's parser recurses once per nesting level, so ``[[[[…]]]]`` a hundred thousand
deep raises ``RecursionError``; :func:`loads` turns every refusal into a ``ValueError``
that names the problem. Flask-free: the store and the hub install it for
``request.get_json`` (:mod:`app.web.jsonguard`), and the hub's batch reader calls it
with ``keep_bad_numbers`` so that an odd number refuses only the item carrying it.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32  # a transaction batch is 4 levels deep; nothing we accept needs more


class BadNumber:
    """A JSON number kept as its text: out of range for a float, or absurdly long."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 24 else f"{self.text[:20]}… ({len(self.text)})"
        return f"<number {shown}>"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _kept_int(text: str) -> int | BadNumber:
    # 20 characters hold every 64-bit integer with its sign; longer is never ours, and
    # int() of thousands of digits is slow (and past 4,300 refused by Python).
    return int(text) if len(text) <= 20 else BadNumber(text)


def _kept_float(text: str) -> float | BadNumber:
    if len(text) > 40:
        return BadNumber(text)
    value = float(text)
    return value if math.isfinite(value) else BadNumber(text)


def depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0), without recursion:
    level by level, so a scalar costs one type test (a batch of 500 transactions is
    thousands of them)."""
    level, found = 0, [value]
    while True:
        containers = [v for v in found if isinstance(v, (dict, list))]
        if not containers:
            return level
        level += 1
        found = []
        for c in containers:
            found.extend(c.values() if isinstance(c, dict) else c)


def loads(text: str | bytes, max_depth: int = MAX_DEPTH, *, keep_bad_numbers: bool = False) -> Any:
    """Parse JSON, raising ``ValueError`` (never ``RecursionError``) for what we refuse.

    With ``keep_bad_numbers``, a number Python cannot hold faithfully (``1e400``, a
    5,000-digit integer) becomes a :class:`BadNumber` left in place instead of a refusal
    of the whole text.
    """
    if keep_bad_numbers:
        parse_int: Any = _kept_int
        parse_float: Any = _kept_float
    else:
        parse_int, parse_float = None, _finite_float
    try:
        value = json.loads(
            text, parse_constant=_no_constant, parse_float=parse_float, parse_int=parse_int
        )
    except RecursionError:
        raise ValueError(f"the JSON nests deeper than {max_depth} levels") from None
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8 text") from None
    if depth(value) > max_depth:
        raise ValueError(f"the JSON nests deeper than {max_depth} levels")
    return value


def json_default(value: Any) -> Any:
    """For ``json.dumps(default=…)``: a :class:`BadNumber` as a marked string."""
    if isinstance(value, BadNumber):
        return {"$bad_number": value.text[:100]}
    raise TypeError(f"{type(value).__name__} is not JSON")
