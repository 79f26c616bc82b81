"""The staff screens (``/staff``): for now, the hub sync status and its "retry now".

Staff login arrives in a later issue; until then these pages are reachable by anyone
on the store's network, and say so.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, url_for
from flask_babel import format_timedelta

from . import clock, outbox, syncstate
from .extensions import htmx
from .i18n import format_clock
from .storage import get_db

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.after_request
def vary_on_htmx(response: Response) -> Response:
    # The same URL answers a full page or a partial: caches must keep them apart.
    response.vary.add("HX-Request")
    response.headers["Cache-Control"] = "no-store"
    return response


def _age(seconds: int | None) -> str | None:
    """A duration for people: ``3 minutes``, ``2 heures``."""
    if seconds is None:
        return None
    return format_timedelta(timedelta(seconds=seconds), threshold=1.1)


def _status_context() -> dict[str, Any]:
    db = get_db()
    now = clock.utcnow()
    s = syncstate.snapshot(db, hub_configured=bool(current_app.config.get("HUB_URL")), now=now)
    last = syncstate.last_sync_at(db)
    total = s["pull_applied"] + s["pull_remaining"]
    return {
        "s": s,
        "last_sync_clock": format_clock(last) if last else None,
        "last_sync_ago": _age(int((now - last).total_seconds())) if last else None,
        "oldest_age": _age(s["oldest_unsent_age_s"]),
        "catching_up": s["pull_remaining"] > 0,
        "progress_total": total,
        "progress_pct": s["pull_applied"] * 100 // total if total else 100,
        "parked_items": outbox.parked(db, limit=50),
    }


@bp.get("/status")
def status() -> Any:
    """Is the store in touch with the hub, what waits to be sent, what needs a human."""
    context = _status_context()
    if htmx:
        return render_template("staff/_sync_status.html", **context)
    return render_template("staff/status.html", **context)


@bp.post("/sync/retry")
def retry_sync() -> Any:
    """Try the hub again now instead of waiting for the next scheduled attempt."""
    syncstate.request_retry(get_db())  # seen by a worker in any process within 1 s
    worker = current_app.extensions.get("sync_worker")
    if worker is not None:
        worker.retry_now()  # the worker in this process wakes at once
    if htmx:
        return render_template("staff/_sync_status.html", retried=True, **_status_context())
    return redirect(url_for("staff.status"))
