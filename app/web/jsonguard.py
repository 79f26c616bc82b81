"""JSON request bodies that cannot crash a server: bounded depth, no NaN or Infinity.

Python's parser recurses once per nesting level, so ``[[[[…]]]]`` a hundred thousand
deep raises ``RecursionError`` (a 500 through Flask, which only turns ``ValueError``
into a 400). Both apps call :func:`install`: every ``request.get_json`` then refuses such a body
with a 400 that names the problem, before any view sees it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Flask, Request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest

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


def loads(
    text: str | bytes,
    max_depth: int = MAX_DEPTH,
    parse_int: Callable[[str], Any] | None = None,
    parse_float: Callable[[str], Any] = _finite_float,
) -> Any:
    """Parse JSON, raising ``ValueError`` (never ``RecursionError``) for what we refuse.

    ``parse_int``/``parse_float`` as for :func:`json.loads` (the hub's batch reader keeps
    odd numbers in place, so only the item carrying one is refused).
    """
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


class GuardedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, with :func:`loads` for what requests bring in."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


class GuardedRequest(Request):
    """Flask hides why a JSON body was refused outside debug mode; we say it."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None:  # not a JSON content type: werkzeug's own 415 says so
            return super().on_json_loading_failed(e)
        raise BadRequest(f"the body is not valid JSON: {e}")


def install(app: Flask) -> None:
    """Make ``request.get_json`` of ``app`` refuse what :func:`loads` refuses, with a 400."""
    app.json = GuardedJSONProvider(app)
    app.request_class = GuardedRequest
