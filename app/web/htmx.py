"""htmx in one place: the one ``htmx`` extension (flask-htmx) both apps initialise, and
the one rule for a URL that answers a whole page or, to htmx, its partial alone."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Response, redirect, render_template
from flask_htmx import HTMX, make_response

__all__ = ["htmx", "redirect_page", "render_page_or_partial", "vary_on_htmx"]

# Read htmx request headers through ``htmx`` (truthy for an htmx request); each app
# factory initialises it (``htmx.init_app(app)``).
htmx = HTMX()


def vary_on_htmx(response: Response) -> Response:
    """After-request hook: the same URL answers a full page or a partial, so caches must
    keep the two apart."""
    response.vary.add("HX-Request")
    return response


def render_page_or_partial(
    page: str,
    partial: str,
    /,
    *,
    target: str | None = None,
    partial_extra: Mapping[str, Any] | None = None,
    page_extra: Callable[[], Mapping[str, Any]] | None = None,
    **context: Any,
) -> str:
    """The partial alone for an htmx request (only one aimed at the element ``target``,
    when given), else the full page that includes it; both drawn from ``context`` (which
    may hold a ``page`` number: ``page`` and ``partial`` are positional only).

    ``partial_extra`` is seen by the partial only (e.g. an out-of-band swap the page must
    not carry); ``page_extra`` is called for the page only (what the page around the
    partial needs, computed only when the page is drawn)."""
    if htmx and (target is None or htmx.target == target):
        return render_template(partial, **context, **(partial_extra or {}))
    return render_template(page, **context, **(page_extra() if page_extra else {}))


def redirect_page(target: str) -> Response:
    """Go to ``target`` as a whole page: for an htmx request an empty 200 with
    ``HX-Redirect`` (htmx would swap a plain redirect's page into the element), else
    a 302."""
    if htmx:
        return make_response("", 200, redirect=target)
    return redirect(target)
