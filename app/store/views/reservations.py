"""Reservations for staff (``/staff/reservations``): what to pull from the shelf, hand
over at the till, or put back on sale, and the shopper's ticket.

The list refreshes itself (htmx polling), so a reservation made at a kiosk shows here
within seconds. A reservation QR scanned anywhere on these screens opens it; any other
scan (a pickup QR, an order number) goes on to the staff scan. Staff login is required
(staff_common); app/store/domain/reservations.py audits every action, this module the
refused scans.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.core import clock
from app.core import db as dbmod
from app.store.domain import reservation_codes, reservations, staff, tickets
from app.store.domain.reservations import ReservationError
from app.store.storage import get_db
from app.store.views.staff_common import (
    device_name,
    staff_blueprint,
    ticket_print_page,
    ticket_response,
)
from app.store.views.store_info import store_details
from app.web.htmx import render_page_or_partial
from app.web.i18n import current_lang

bp = staff_blueprint("reservations_staff", __name__)


def _messages() -> dict[str, str]:
    return {
        "not_found": _("No such reservation in this store."),
        "not_held": _("This reservation is no longer put aside: nothing was changed."),
        "bad_token": _("Forged or damaged reservation QR code: refused. Ask for the code."),
    }


def time_left(minutes: int) -> str:
    """``expires in 1 h 12``, ``expires in 8 min``, ``overdue by 3 min``."""
    if minutes <= 0:
        return _("overdue by %(m)d min", m=-minutes)
    if minutes < 60:
        return _("expires in %(m)d min", m=minutes)
    return _("expires in %(h)d h %(m)02d", h=minutes // 60, m=minutes % 60)


def reservation_globals() -> dict[str, Any]:
    """The held-reservation count of the staff navigation, for every page (listed in
    app/store/app.py)."""
    # A callable: the count is queried only by the pages that show the staff navigation.
    return {"held_reservations": lambda: reservations.count_held(get_db())}


def _reservation_or_404(reservation_id: str) -> dict[str, Any]:
    found = reservations.get(get_db(), reservation_id)
    if found is None:
        abort(404)
    return found


def _list_context(view: str) -> dict[str, Any]:
    db = get_db()
    rows = reservations.list_reservations(db, view)
    for r in rows:
        r["time_left"] = time_left(r["minutes_left"])
    return {
        "view": view,
        "rows": rows,
        "counts": reservations.counts(db),
        "poll_seconds": current_app.config["STOCK_POLL_SECONDS"],
    }


@bp.get("/reservations")
def reservation_list() -> Any:
    """What to pull from the shelf: every reservation put aside, soonest expiry first."""
    view = request.args.get("view", "held")
    if view not in reservations.VIEWS:
        view = "held"
    context = _list_context(view)
    return render_page_or_partial(
        "reservations/list.html",
        "reservations/_list.html",
        target="reservation-list",
        partial_extra={"oob": True},  # the navigation's count, swapped out of band
        **context,
    )


def _list_error(message: str, status: int, code: str = "") -> Any:
    context = _list_context("held")
    return render_template("reservations/list.html", error=message, code=code, **context), status


@bp.get("/reservations/scan")
def scan() -> Any:
    """A scanned reservation QR or a typed code opens the reservation."""
    db = get_db()
    raw = request.args.get("code", "").strip()
    code = raw[:200]
    if not code:
        return redirect(url_for(".reservation_list"))
    try:
        found = reservations.find_by_scan(db, code)
    except ReservationError as exc:
        with dbmod.write(db):
            staff.audit(
                db, g.staff["id"], "reservation.scan_refused", device_name(), {"reason": exc.code}
            )
        return _list_error(_messages()[exc.code], 400)
    if found is not None:
        return redirect(url_for(".reservation_page", reservation_id=found["id"]))
    if not reservation_codes.looks_like_reservation(code):
        # A pickup QR, an order number or a product barcode scanned on this screen: the
        # counter knows it. Passed whole: a pickup QR is longer than 200 characters.
        return redirect(url_for("staff_scan.scan", code=raw[:1024]))
    return _list_error(_("No reservation found for %(code)s.", code=code), 404, code)


@bp.get("/reservations/<reservation_id>")
def reservation_page(reservation_id: str) -> Any:
    """One reservation: its lines in shelf order, its state, and what can be done."""
    return _page(_reservation_or_404(reservation_id))


def _page(found: dict[str, Any], status: int = 200, **extra: Any) -> Any:
    minutes = reservations.minutes_left(found["expires_at"], clock.utcnow())
    return render_template(
        "reservations/reservation.html",
        r=found,
        time_left=time_left(minutes),
        overdue=found["status"] == "held" and minutes <= 0,
        **extra,
    ), status


def _act(reservation_id: str, action: str) -> Any:
    db = get_db()
    _reservation_or_404(reservation_id)
    try:
        if action == "collected":
            reservations.collect(db, reservation_id, staff_id=g.staff["id"], device=device_name())
        else:
            reservations.release(
                db,
                reservation_id,
                staff_id=g.staff["id"],
                device=device_name(),
                reason=request.form.get("reason", "")[:200],
            )
    except ReservationError as exc:
        return _page(_reservation_or_404(reservation_id), 409, error=_messages()[exc.code])
    return redirect(url_for(".reservation_page", reservation_id=reservation_id, done=action))


@bp.post("/reservations/<reservation_id>/collect")
def collect(reservation_id: str) -> Any:
    """Handed to the shopper at the till: the units leave with them."""
    return _act(reservation_id, "collected")


@bp.post("/reservations/<reservation_id>/release")
def release(reservation_id: str) -> Any:
    """The shopper is not coming (or changed their mind): the units go back on sale."""
    return _act(reservation_id, "released")


@bp.get("/reservations/<reservation_id>/ticket")
def ticket_print(reservation_id: str) -> Any:
    """The reservation ticket's print view."""
    found = _reservation_or_404(reservation_id)
    return ticket_print_page(
        "reservations_staff.ticket",
        reservation_id=reservation_id,
        heading=_("Reservation ticket %(code)s", code=found["code"]),
        back_url=url_for("reservations_staff.reservation_page", reservation_id=reservation_id),
        back_label=_("Back"),
    )


@bp.get("/reservations/<reservation_id>/ticket.<fmt>")
def ticket(reservation_id: str, fmt: str) -> Any:
    """The shopper's reservation ticket (code, time, items, QR) as PNG or PDF."""
    found = _reservation_or_404(reservation_id)
    img = tickets.reservation_ticket(
        found,
        found["token"],
        store_details()["name"],
        current_lang(),
        timezone=current_app.config["STORE_TIMEZONE"],
    )
    return ticket_response(img, fmt, f"reservation-{found['code']}")
