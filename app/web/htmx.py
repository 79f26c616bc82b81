"""htmx in one place: the one ``htmx`` extension (flask-htmx) both apps initialise, and
the one rule for a URL that answers a whole page or, to htmx, its partial alone."""

from __future__ import annotations

from flask import Response

from app.web.extensions import htmx

__all__ = ["htmx", "vary_on_htmx"]


def vary_on_htmx(response: Response) -> Response:
    """After-request hook: the same URL answers a full page or a partial, so caches must
    keep the two apart."""
    response.vary.add("HX-Request")
    return response
