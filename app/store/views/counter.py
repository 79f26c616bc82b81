"""The click-and-collect counter (``/staff/orders``): the order lists and search,
preparation by scanning, the bag label, hand-over after a QR or code check, its receipt.

Tablet-first: every action is a form (CSRF token) that works without script; htmx
swaps the preparation panel in place so a scanner can go on scanning. Staff login is
required (staff_common); every action is audited by app/store/domain/orders/. Returns
are app/store/views/returns.py, a scan on any staff page app/store/views/scan.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import abort, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from app.core import clock
from app.core.qrphoto import decode_upload
from app.store.domain import tickets
from app.store.domain.orders import pickup, preparation, queries
from app.store.domain.orders.status import OrderError
from app.store.storage import get_db
from app.store.views.counter_common import (
    clock_text,
    line_colour,
    line_name,
    message,
    messages,
    order_or_404,
    parse_qty,
    promised_when,
    qr_refused,
    qr_title,
    receipt_lines,
    remember_verified,
    row_times,
    verified,
)
from app.store.views.staff_common import (
    current_staff,
    device_name,
    is_manager,
    manager_required,
    staff_blueprint,
    ticket_print_page,
    ticket_response,
)
from app.store.views.store_info import store_details
from app.web.htmx import htmx, redirect_page, render_page_or_partial
from app.web.i18n import current_lang

bp = staff_blueprint("counter", __name__)


def counter_globals() -> dict[str, Any]:
    """Order-line names and colours, and ``fmt_clock``, for every page (listed in
    app/store/app.py)."""
    return {
        "line_name": line_name,
        "line_colour": line_colour,
        "fmt_clock": clock_text,
        "promised": lambda text: promised_when(text, clock.utcnow()),
    }


# --- Lists and search --------------------------------------------------------------


@bp.get("/orders")
def order_list() -> Any:
    """The order lists (to prepare, being prepared, ready, collected today, expired)."""
    db = get_db()
    view = request.args.get("view", "to_prepare")
    if view not in queries.VIEWS:
        view = "to_prepare"
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    raw = request.args.get("q", "").strip()
    if pickup.looks_like_token(raw) and not htmx:
        # A pickup QR scanned into the search box and sent without script: open it.
        return redirect(url_for("staff_scan.scan", code=raw[:1024]))
    q = raw[:80]
    now = clock.utcnow()
    error = error_title = None
    if pickup.looks_like_token(raw):
        # The same, searched as one types: the order the QR names, if it is a good one.
        try:
            q = pickup.verify_token(db, raw[:1024], now)["number"]
        except OrderError as exc:
            q, error = "", message(exc)
            error_title = qr_title(exc)
    if error:
        rows, more = [], False  # a refused QR lists nothing rather than some other list
    elif q:
        rows = queries.search(db, q, now=now)
        more = False
    else:
        rows = queries.list_orders(
            db, view, now=now, offset=(page - 1) * queries.PAGE_SIZE, limit=queries.PAGE_SIZE + 1
        )
        more = len(rows) > queries.PAGE_SIZE
        rows = rows[: queries.PAGE_SIZE]
    row_times(rows, now)
    context = {
        "view": view,
        "rows": rows,
        "q": q,
        "page": page,
        "more": more,
        "counts": queries.counts(db, now),
        "error": error,
        "error_title": error_title,
    }
    return render_page_or_partial(
        "orders/list.html", "orders/_list.html", target="order-list", **context
    )


@bp.get("/orders/<order_id>")
def order_page(order_id: str) -> Any:
    """One order: lines, state, and what can be done next."""
    db = get_db()
    order = order_or_404(order_id)
    handovers = db.execute_returning_dicts(
        "SELECT id, at, collector, collector_name, method FROM handovers WHERE order_id = ? "
        "ORDER BY at",
        [order_id],
    )
    return render_template("orders/order.html", order=order, handovers=handovers)


# --- Preparation -------------------------------------------------------------------


def _prep_context(order_id: str, **extra: Any) -> dict[str, Any]:
    db = get_db()
    order = order_or_404(order_id)
    groups = preparation.picking_list(db, order_id, current_lang())
    done = all(ln["qty_picked"] >= ln["qty"] or ln["short"] for ln in order["lines"])
    return {"order": order, "groups": groups, "all_done": done, **extra}


def _prep_response(order_id: str, status: int = 200, **extra: Any) -> Any:
    context = _prep_context(order_id, **extra)
    return render_page_or_partial("orders/prepare.html", "orders/_prep.html", **context), status


@bp.get("/orders/<order_id>/prepare")
def prepare(order_id: str) -> Any:
    """The preparation screen: picking list by category, scan each item."""
    return _prep_response(order_id)


@bp.post("/orders/<order_id>/prepare/scan")
def prepare_scan(order_id: str) -> Any:
    """One scanned item: green when it belongs in the bag, red with the reason when not."""
    db = get_db()
    try:
        result = preparation.scan_item(
            db, order_id, request.form.get("code", ""), current_staff()["id"], device_name()
        )
    except OrderError as exc:
        if exc.code == "unknown_order":
            abort(404)
        return _prep_response(order_id, 409, cue="error", feedback=message(exc))
    line = result["line"]
    text = _(
        "%(name)s: %(picked)d of %(qty)d",
        name=line_name(line),
        picked=result["picked"],
        qty=result["qty"],
    )
    return _prep_response(order_id, cue="ok", feedback=text, last_line=line["line"])


@bp.post("/orders/<order_id>/lines/<int:line>/short")
def mark_short(order_id: str, line: int) -> Any:
    """A missing item: the order goes out partial; the hub tells the customer."""
    try:
        preparation.mark_short(get_db(), order_id, line, current_staff()["id"], device_name())
    except OrderError as exc:
        return _prep_response(order_id, 409, cue="error", feedback=message(exc))
    return _prep_response(order_id, cue="ok", feedback=_("Marked short."))


@bp.post("/orders/<order_id>/ready")
def mark_ready(order_id: str) -> Any:
    """The bag is on its shelf: ready (the hub notifies the customer)."""
    try:
        preparation.mark_ready(
            get_db(),
            order_id,
            request.form.get("shelf_slot", ""),
            current_staff()["id"],
            device_name(),
        )
    except OrderError as exc:
        return _prep_response(order_id, 409, cue="error", feedback=message(exc))
    return redirect_page(url_for("counter.order_page", order_id=order_id, ready=1))


@bp.get("/orders/<order_id>/picking")
def picking_list(order_id: str) -> Any:
    """The printable picking list."""
    return render_template("orders/picking.html", **_prep_context(order_id))


# --- Tickets -----------------------------------------------------------------------


@bp.get("/orders/<order_id>/label")
def bag_label_print(order_id: str) -> Any:
    """The bag label's print view: the label at its print size, a Print button."""
    order = order_or_404(order_id)
    if not order["shelf_slot"]:
        abort(404)
    number, slot = order["number"], order["shelf_slot"]
    return ticket_print_page(
        "counter.bag_label",
        order_id=order_id,
        heading=_("Bag label %(number)s", number=number),
        alt=_("Bag label of order %(number)s, shelf %(slot)s", number=number, slot=slot),
        back_url=url_for("counter.order_page", order_id=order_id),
        back_label=_("Back to the order"),
    )


@bp.get("/orders/<order_id>/label.<fmt>")
def bag_label(order_id: str, fmt: str) -> Any:
    """The bag label (number, initials, shelf slot, a QR of the number) as PNG or PDF."""
    order = order_or_404(order_id)
    if not order["shelf_slot"]:
        abort(404)
    order["item_count"] = sum(ln["qty_ready"] for ln in order["lines"])
    img = tickets.bag_label(order, order["shelf_slot"], order["number"], current_lang())
    return ticket_response(img, fmt, f"label-{order['number']}")


@bp.get("/orders/<order_id>/handovers/<handover_id>/receipt")
def handover_receipt_print(order_id: str, handover_id: str) -> Any:
    """The hand-over receipt's print view."""
    record = queries.handover_record(get_db(), handover_id)
    if record is None or record["order_id"] != order_id:
        abort(404)
    return ticket_print_page(
        "counter.handover_receipt",
        order_id=order_id,
        handover_id=handover_id,
        heading=_("Hand-over receipt %(number)s", number=order_or_404(order_id)["number"]),
        back_url=url_for("counter.handover_done", order_id=order_id, handover_id=handover_id),
        back_label=_("Back"),
    )


@bp.get("/orders/<order_id>/handovers/<handover_id>/receipt.<fmt>")
def handover_receipt(order_id: str, handover_id: str, fmt: str) -> Any:
    """The hand-over receipt as PNG or PDF."""
    db = get_db()
    order = order_or_404(order_id)
    record = queries.handover_record(db, handover_id)
    if record is None or record["order_id"] != order_id:
        abort(404)
    lines = receipt_lines(order, record)
    staff = db.execute("SELECT name FROM staff WHERE id = ?", [record["staff_id"]]).fetchone()
    img = tickets.handover_receipt(
        store_details(),
        order,
        lines,
        staff[0] if staff else "",
        clock.parse_iso(record["at"]),
        current_lang(),
    )
    return ticket_response(img, fmt, f"handover-{order['number']}")


# --- Hand-over ---------------------------------------------------------------------


@bp.get("/orders/handover")
def desk() -> Any:
    """The hand-over desk: scan the pickup QR, send a photo of it, or type number + code."""
    return render_template("orders/desk.html")


@bp.post("/orders/verify/photo")
def verify_photo() -> Any:
    """A photo of the customer's QR code, decoded here (tablets may lack a live camera)."""
    text = decode_upload(request.files.get("photo"))
    if not text:
        return render_template("orders/desk.html", error=messages()["no_qr"]), 400
    try:
        order = pickup.verify_token(get_db(), text)
    except OrderError as exc:
        return qr_refused(exc)
    remember_verified(order["id"], "qr")
    return redirect(url_for("counter.handover_form", order_id=order["id"]))


@bp.post("/orders/verify/code")
def verify_code() -> Any:
    """The order number and the 6-digit pickup code the customer received."""
    number = request.form.get("number", "").strip()[:40]
    try:
        order = pickup.verify_code(
            get_db(), number, request.form.get("code", ""), current_staff()["id"], device_name()
        )
    except OrderError as exc:
        status = 429 if exc.code == "code_locked" else 400
        return render_template("orders/desk.html", error=message(exc), number=number), status
    remember_verified(order["id"], "code")
    return redirect(url_for("counter.handover_form", order_id=order["id"]))


@bp.get("/orders/<order_id>/handover")
def handover_form(order_id: str) -> Any:
    """Choose what is handed over (all or part) and who collects."""
    order = order_or_404(order_id)
    return render_template(
        "orders/handover.html",
        order=order,
        method=verified(order_id),
        handover_id=uuid.uuid4(),
    )


@bp.post("/orders/<order_id>/handover")
def do_handover(order_id: str) -> Any:
    """Record the hand-over (once, whatever the number of tablets)."""
    db = get_db()
    order = order_or_404(order_id)
    # A double tap (or a resent form) after the hand-over went through: show its receipt,
    # not "check the customer first" (the verification was used up by the first tap).
    done = queries.handover_record(db, request.form.get("handover_id", "")[:64])
    if done is not None and done["order_id"] == order_id:
        return redirect(url_for("counter.handover_done", order_id=order_id, handover_id=done["id"]))
    method = verified(order_id)
    manager_id = None
    if method is None:
        if request.form.get("override") and is_manager():
            method, manager_id = "override", current_staff()["id"]
        else:
            return _handover_error(order, OrderError("not_verified"), None, 403)
    lines: dict[int, int] = {}
    for ln in order["lines"]:
        qty = parse_qty(request.form.get(f"qty_{ln['line']}"))
        if qty is None:
            return _handover_error(order, OrderError("invalid_qty"), method, 400)
        lines[ln["line"]] = qty
    try:
        record = pickup.handover(
            db,
            order_id,
            staff_id=current_staff()["id"],
            method=method,
            lines=lines,
            collector=request.form.get("collector", "customer"),
            collector_name=request.form.get("collector_name", ""),
            manager_id=manager_id,
            override_reason=request.form.get("override_reason", ""),
            handover_id=request.form.get("handover_id") or None,
            device=device_name(),
        )
    except OrderError as exc:
        return _handover_error(order, exc, method, 409)
    session.pop("verified", None)
    return redirect(url_for("counter.handover_done", order_id=order_id, handover_id=record["id"]))


def _handover_error(order: dict, exc: OrderError, method: str | None, status: int) -> Any:
    return render_template(
        "orders/handover.html",
        order=order,
        method=method,
        error=message(exc),
        handover_id=request.form.get("handover_id") or uuid.uuid4(),
    ), status


@bp.get("/orders/<order_id>/handovers/<handover_id>")
def handover_done(order_id: str, handover_id: str) -> Any:
    """Done: what was given, and the receipt to print."""
    order = order_or_404(order_id)
    record = queries.handover_record(get_db(), handover_id)
    if record is None or record["order_id"] != order_id:
        abort(404)
    by_line = {ln["line"]: ln for ln in order["lines"]}
    return render_template("orders/handover_done.html", order=order, record=record, by_line=by_line)


@bp.post("/orders/<order_id>/unlock")
@manager_required
def unlock(order_id: str) -> Any:
    """A manager lifts a pickup-code lockout."""
    try:
        pickup.unlock_code(get_db(), order_id, current_staff()["id"], device_name())
    except OrderError:
        abort(404)
    return redirect(url_for("counter.order_page", order_id=order_id, unlocked=1))
