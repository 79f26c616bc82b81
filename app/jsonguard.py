"""JSON request bodies that cannot crash a server: bounded depth, no NaN or Infinity.

Python's parser recurses once per nesting level, so ``[[[[…]]]]`` a hundred thousand
deep raises ``RecursionError`` (a 500 through Flask, which only turns ``ValueError``
into a 400). Both apps install :class:`GuardedJSONProvider`: every ``request.get_json``
then refuses such a body with a 400 that names the problem, before any view sees it.
"""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 32  # a transaction batch is 4 levels deep; nothing we accept needs more


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON, raising ``ValueError`` (never ``RecursionError``) for what we refuse."""
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {max_depth} levels") from None
    if depth(value) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    return value


class GuardedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, with :func:`loads` for what requests bring in."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)
