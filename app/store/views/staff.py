"""The staff screens (``/staff``): login by PIN, the hub sync status, "retry now".

Every staff page needs a logged-in staff member; a session ends after
``STAFF_IDLE_SECONDS`` without a staff request (10 minutes by default).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app, g, redirect, render_template, request, session, url_for
from flask_babel import format_timedelta, ngettext
from flask_babel import gettext as _

from app.core import clock, protocol
from app.store.domain import outbox, staff
from app.store.storage import get_db
from app.store.sync import state
from app.store.views.staff_common import device_name, staff_blueprint
from app.web.htmx import htmx, render_page_or_partial
from app.web.i18n import format_clock, format_day_at_time
from app.web.security import safe_next

# The login, the logout and ``/staff`` itself need no login (staff_common.PUBLIC_ENDPOINTS);
# no staff error pages of its own: nothing here is refused with a 403 or a 404.
bp = staff_blueprint("staff", __name__, error_pages=False)


def staff_globals() -> dict[str, Any]:
    """The staff member logged in, for every page (listed in app/store/app.py)."""
    return {"staff_member": g.get("staff")}


def _local_next(default: str) -> str:
    """A staff page to go to after login (``next``), by the project's one rule."""
    return safe_next(request.values.get("next"), default, prefix="/staff")


@bp.get("/", strict_slashes=False)
def home() -> Any:
    """``/staff``: the orders when someone is logged in, else the login (never a 404).

    Public so that the address itself never carries a ``next``; the orders page checks
    the session (an expired one goes to the login from there)."""
    if session.get("staff"):
        return redirect(url_for("counter.order_list"))
    return redirect(url_for("staff.login"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Choose your name, type your six-digit PIN."""
    db = get_db()
    error = None
    chosen = request.form.get("staff_id", "")
    status = 200
    if request.method == "POST":
        try:
            member = staff.login(db, chosen, request.form.get("pin", ""), device_name())
        except staff.StaffError as exc:
            status = 429 if exc.code == "locked" else 400
            if exc.code == "pin_format":
                error = _("A PIN is exactly 6 digits.")
            elif exc.code == "locked":
                error = _(
                    "Too many wrong PINs: this account is locked for %(s)d s. "
                    "Ask a manager if you are stuck.",
                    s=exc.extra["retry_in_s"],
                )
            elif exc.code == "wrong_pin":
                error = ngettext(
                    "Wrong PIN. %(num)d attempt left before the account locks.",
                    "Wrong PIN. %(num)d attempts left before the account locks.",
                    exc.extra["attempts_left"],
                )
            else:
                error = _("Choose your name in the list.")
        else:
            _fresh_session()
            session["staff"] = member
            session["staff_sid"] = staff.open_session(db, member["id"])
            session["staff_seen"] = clock.now_s()
            # The orders are the counter's first screen.
            return redirect(_local_next(url_for("counter.order_list")))
    return (
        render_template(
            "staff/login.html",
            members=staff.list_staff(db),
            chosen=chosen,
            error=error,
            expired=request.args.get("expired") == "1",
            next=_local_next(""),
        ),
        status,
    )


@bp.post("/logout")
def logout() -> Any:
    """End the staff session on this device."""
    member = session.get("staff")
    session_id = session.get("staff_sid")
    _fresh_session()
    if member:
        db = get_db()
        staff.revoke_session(db, session_id)  # a copy of the cookie ends here too
        staff.audit(db, member["id"], "logout", device_name())
    return redirect(url_for("staff.login"))


def _fresh_session() -> None:
    """Forget everything of the previous person on this tablet (a customer checked,
    a return in progress…), keeping only the language shown."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def _age(seconds: int | None) -> str | None:
    """A duration for people: ``3 minutes``, ``2 heures``."""
    if seconds is None:
        return None
    return format_timedelta(timedelta(seconds=seconds), threshold=1.1)


def _moment(text: str | None) -> str:
    """A past moment as a shop assistant reads it, local time: ``jeu. 3 déc. à 14:02``."""
    return format_day_at_time(text)


def _what(item: dict[str, Any]) -> str:
    """What a change sent to head office was, in plain words."""
    kinds = {
        protocol.STOCK_MOVEMENT: _("Stock change (sale, delivery, count)"),
        protocol.ORDER_READY: _("Order ready"),
        protocol.ORDER_HANDOVER: _("Order handed over"),
        protocol.ORDER_EXPIRED: _("Order not collected in time"),
        protocol.ORDER_REMINDER: _("Reminder to the customer"),
        protocol.ORDER_RETURN: _("Return"),
        protocol.ORDER_REQUEST: _("Order placed at the kiosk"),
    }
    return kinds.get(item["type"], item["type"])


def _why(reason: str | None) -> str:
    """Why head office refused a change, in plain words."""
    reasons = {
        "unknown_sku": _("head office does not know this product"),
        "unknown_order": _("head office does not know this order"),
        "wrong_store": _("head office says it belongs to another store"),
        "invalid_state": _("the order had already moved on at head office"),
        "conflict": _("it clashes with a change already made at head office"),
    }
    return reasons.get(reason or "", _("head office could not read it"))


def _status_context() -> dict[str, Any]:
    db = get_db()
    now = clock.utcnow()
    s = state.snapshot(db, hub_configured=bool(current_app.config.get("HUB_URL")), now=now)
    last = state.last_sync_at(db)
    total = s["pull_applied"] + s["pull_remaining"]
    parked = outbox.parked(db, limit=50)
    for item in parked:
        item["when"] = _moment(item["occurred_at"])
        item["what"] = _what(item)
        item["why"] = _why(item["parked_reason"])
    return {
        "s": s,
        "last_sync_clock": format_clock(last) if last else None,
        "last_sync_ago": _age(int((now - last).total_seconds())) if last else None,
        "oldest_age": _age(s["oldest_unsent_age_s"]),
        "catching_up": s["pull_remaining"] > 0,
        "progress_total": total,
        "progress_pct": s["pull_applied"] * 100 // total if total else 100,
        "parked_items": parked,
    }


@bp.get("/status")
def status() -> Any:
    """Is the store in touch with the hub, what waits to be sent, what needs a human."""
    return render_page_or_partial(
        "staff/status.html", "staff/_sync_status.html", **_status_context()
    )


@bp.post("/sync/retry")
def retry_sync() -> Any:
    """Try the hub again now instead of waiting for the next scheduled attempt."""
    db = get_db()
    state.request_retry(db)  # seen by a worker in any process within 1 s
    staff.audit(db, g.staff["id"], "sync.retry", device_name())
    worker = current_app.extensions.get("sync_worker")
    if worker is not None:
        worker.retry_now()  # the worker in this process wakes at once
    if htmx:
        return render_template("staff/_sync_status.html", retried=True, **_status_context())
    return redirect(url_for("staff.status"))
