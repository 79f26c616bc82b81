"""JSON request bodies that cannot crash a server, installed in Flask.

Both apps call :func:`install`: every ``request.get_json`` then parses with
:func:`app.core.jsonsafe.loads` (bounded depth, no NaN or Infinity) and refuses what it
refuses with a 400 that names the problem, before any view sees it. Flask only turns
``ValueError`` into a 400; a ``RecursionError`` would be a 500.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest

from app.core import jsonsafe


class GuardedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, with :func:`app.core.jsonsafe.loads` for what requests bring in."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return jsonsafe.loads(s)


class GuardedRequest(Request):
    """Flask hides why a JSON body was refused outside debug mode; we say it."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None:  # not a JSON content type: werkzeug's own 415 says so
            return super().on_json_loading_failed(e)
        raise BadRequest(f"the body is not valid JSON: {e}")


def install(app: Flask) -> None:
    """Make ``request.get_json`` of ``app`` refuse what ``jsonsafe.loads`` refuses, with a 400."""
    app.json = GuardedJSONProvider(app)
    app.request_class = GuardedRequest
