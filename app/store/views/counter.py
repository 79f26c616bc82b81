"""The click-and-collect counter (``/staff/orders``, ``/staff/returns``): lists, search,
preparation by scanning, hand-over after a QR or code check, tickets, returns.

Tablet-first: every action is a form (CSRF token) that works without script; htmx
swaps the preparation panel in place so a scanner can go on scanning. Staff login is
required (the staff blueprint's check); every action is audited by app/store/domain/orders.py.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from app.core import catalog, clock, ean
from app.core.qrphoto import decode_upload
from app.store.domain import orders, reservations, stock, tickets
from app.store.domain.orders import OrderError
from app.store.storage import get_db
from app.store.views.staff import device_name, require_staff, vary_on_htmx
from app.web.extensions import htmx
from app.web.i18n import current_lang, format_clock

bp = Blueprint("counter", __name__, url_prefix="/staff")
bp.before_request(require_staff)
bp.after_request(vary_on_htmx)

VERIFIED_S = 600  # a QR or code check is good for one hand-over within 10 minutes


def _messages() -> dict[str, str]:
    return {
        "unknown_order": _("No order found. Check the number, or scan the QR code again."),
        "unknown_item": _("This barcode is not a product we know. Scan it again."),
        "wrong_item": _("Wrong product: this item is not in the order. Put it back."),
        "too_many": _("One too many: every unit of this product is already in the bag."),
        "invalid_state": _("This order cannot do that in its current state."),
        "incomplete": _("Scan every item or mark the missing ones short first."),
        "nothing_picked": _("Nothing is picked: the order cannot be ready empty."),
        "shelf_slot": _("Give the shelf slot where the bag goes (up to 20 characters)."),
        "line_complete": _("This line is complete."),
        "unknown_line": _("This line is not in the order."),
        "no_hub_key": _("This store has not received the hub's key yet: use the pickup code."),
        "malformed": _("This is not a pickup QR code. Ask for the order number and code."),
        "bad_signature": _("Forged or damaged QR code: refused. Ask for the pickup code."),
        "unknown_key": _("QR code signed with an unknown key: ask for the pickup code."),
        "wrong_kind": _("This QR code is not a pickup code."),
        "expired": _("This QR code has expired. Ask for the order number and code."),
        "not_yet_valid": _("This QR code is not valid yet: check the tablet's clock."),
        "revoked": _("This QR code was cancelled."),
        "wrong_store": _("This QR code is for another store: the order is not collected here."),
        "code_format": _("A pickup code is exactly 6 digits."),
        "code_locked": _("Too many wrong codes: this order is locked. A manager must unlock it."),
        "manager_required": _("Only a manager can do this."),
        "already_collected": _("Already handed over: nothing is left to give."),
        "qty_out_of_range": _("Quantity out of range: more than is left."),
        "invalid_qty": _("Quantities are whole numbers from 0."),
        "nothing_chosen": _("Choose at least one item."),
        "proxy_name": _("Write the name of the person collecting (up to 80 characters)."),
        "override_reason": _("Say why the hand-over is made without a check."),
        "details_mismatch": _("The e-mail or last name does not match this order."),
        "reason": _("Give a reason (up to 500 characters)."),
        "refund": _("Choose how the customer is refunded."),
        "condition": _("Choose the condition of each item."),
        "not_verified": _("Check the customer first: scan the QR code or type the pickup code."),
        "no_qr": _("No QR code found in the photo. Try again closer, or type the code."),
        "empty_code": _("Nothing was scanned."),
        "misread": _("This barcode was misread (its check digit is wrong). Scan it again."),
        "unknown_code": _("Nothing found for this code: not an order, a product or a ticket."),
    }


# Pickup QR refusals that mean the code itself is no good (forged, damaged, expired…):
# shown under "Invalid QR code". An unknown order or a missing hub key is not the
# customer's QR's fault and keeps its own sentence.
_QR_INVALID = {
    "malformed",
    "bad_signature",
    "unknown_key",
    "wrong_kind",
    "expired",
    "not_yet_valid",
    "revoked",
    "wrong_store",
}


def _qr_refused(exc: OrderError, template: str = "orders/desk.html", **extra: Any) -> Any:
    """A refused pickup QR: a 400 page, in plain words, with the staff navigation."""
    title = _("Invalid QR code") if exc.code in _QR_INVALID else None
    return render_template(template, error=_message(exc), error_title=title, **extra), 400


def _message(exc: OrderError) -> str:
    text = _messages().get(exc.code, _("Refused: %(code)s", code=exc.code))
    if exc.code == "wrong_code":
        return _(
            "Wrong pickup code. %(n)d attempt(s) left before the order locks.",
            n=exc.extra.get("attempts_left", 0),
        )
    return text


def _staff() -> dict[str, Any]:
    return g.staff


def _is_manager() -> bool:
    return _staff()["role"] == "manager"


def _order_or_404(order_id: str) -> dict[str, Any]:
    order = orders.get_order(get_db(), order_id)
    if order is None:
        abort(404)
    return order


def _name(line: dict[str, Any]) -> str:
    return line["name_en"] if current_lang() == "en" and line["name_en"] else line["name_fr"]


def _colour(line: dict[str, Any]) -> str:
    return line["colour_en"] if current_lang() == "en" and line["colour_en"] else line["colour_fr"]


@bp.app_context_processor
def counter_globals() -> dict[str, Any]:
    return {"line_name": _name, "line_colour": _colour, "fmt_clock": _clock}


def _clock(text: str | None) -> str:
    """``14:02`` for an ISO instant; cached, since Babel takes ~1 ms a call and a list
    page shows fifty of them."""
    if not text:
        return ""
    return _clock_cached(text, str(get_locale() or "fr"), current_app.config["STORE_TIMEZONE"])


@lru_cache(maxsize=65536)
def _clock_cached(text: str, locale: str, tz: str) -> str:
    return format_clock(clock.parse_iso(text), locale)


# --- Verification kept in the session -----------------------------------------------


def _remember_verified(order_id: str, method: str) -> None:
    session["verified"] = {"id": order_id, "method": method, "at": clock.now_s()}


def _verified(order_id: str) -> str | None:
    v = session.get("verified") or {}
    if v.get("id") == order_id and clock.now_s() - v.get("at", 0) <= VERIFIED_S:
        return v.get("method")
    return None


def staff_error(exc: HTTPException) -> Any:
    """A 4xx on a staff page: said in the staff screens' look, with their navigation."""
    return render_template("staff/error.html", error=exc), exc.code or 400


for _code in (403, 404):  # not 400: the CSRF refusal (a 400) keeps its own page
    bp.register_error_handler(_code, staff_error)


# --- Lists and search --------------------------------------------------------------


@bp.get("/orders")
def order_list() -> Any:
    """The order lists (to prepare, being prepared, ready, collected today, expired)."""
    db = get_db()
    view = request.args.get("view", "to_prepare")
    if view not in orders.VIEWS:
        view = "to_prepare"
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    raw = request.args.get("q", "").strip()
    if orders.looks_like_token(raw) and not htmx:
        # A pickup QR scanned into the search box and sent without script: open it.
        return redirect(url_for("counter.scan", code=raw[:1024]))
    q = raw[:80]
    now = clock.utcnow()
    error = error_title = None
    if orders.looks_like_token(raw):
        # The same, searched as one types: the order the QR names, if it is a good one.
        try:
            q = orders.verify_token(db, raw[:1024], now)["number"]
        except OrderError as exc:
            q, error = "", _message(exc)
            error_title = _("Invalid QR code") if exc.code in _QR_INVALID else None
    if error:
        rows, more = [], False  # a refused QR lists nothing rather than some other list
    elif q:
        rows = orders.search(db, q, now=now)
        more = False
    else:
        rows = orders.list_orders(
            db, view, now=now, offset=(page - 1) * orders.PAGE_SIZE, limit=orders.PAGE_SIZE + 1
        )
        more = len(rows) > orders.PAGE_SIZE
        rows = rows[: orders.PAGE_SIZE]
    context = {
        "view": view,
        "rows": rows,
        "q": q,
        "page": page,
        "more": more,
        "counts": orders.counts(db, now),
        "error": error,
        "error_title": error_title,
    }
    if htmx and htmx.target == "order-list":
        return render_template("orders/_list.html", **context)
    return render_template("orders/list.html", **context)


@bp.get("/orders/scan")  # the older address, kept working
@bp.get("/scan")  # registered first (decorators apply inside out): url_for builds this one
def scan() -> Any:
    """A scan on any staff page, dispatched by what the code is: a pickup QR opens its
    hand-over, a reservation ticket its reservation, an order number its order, a
    product barcode (or SKU) the product. Never the shopper kiosk's ``/scan``."""
    db = get_db()
    code = request.args.get("code", "").strip()[:1024]
    if not code:
        return _scan_refused(_messages()["empty_code"], 400)
    if reservations.looks_like_reservation(code):
        # A reservation ticket scanned on an order screen: open the reservation.
        return redirect(url_for("reservations_staff.scan", code=code))
    if orders.looks_like_token(code):
        try:
            order = orders.verify_token(db, code)
        except OrderError as exc:
            return _qr_refused(exc)
        _remember_verified(order["id"], "qr")
        return redirect(url_for("counter.handover_form", order_id=order["id"]))
    order = orders.find_by_number(db, code)
    if order is not None:
        return redirect(url_for("counter.order_page", order_id=order["id"]))
    variant = _scanned_variant(code)
    if variant is not None:
        return redirect(url_for("counter.product", sku=variant["sku"]))
    if _misread(code):
        return _scan_refused(_messages()["misread"], 400)
    if orders.normalise_number(code):
        return _scan_refused(_("No order found for %(code)s.", code=code), 404)
    return _scan_refused(_messages()["unknown_code"], 404)


def _scan_refused(message: str, status: int) -> Any:
    return render_template("orders/desk.html", error=message), status


def _scanned_variant(code: str) -> dict[str, Any] | None:
    """The variant a product barcode or SKU names (a barcode needs a right check digit)."""
    if len(code) > 64 or _misread(code):
        return None
    return catalog.find_variant(get_db(), code)


def _misread(code: str) -> bool:
    return ean.looks_like_barcode(code) and not ean.has_valid_check_digit(code)


@bp.get("/products/<sku>")
def product(sku: str) -> Any:
    """A scanned product at the counter: what it is, the stock here, how to take it back."""
    db = get_db()
    lang = current_lang()
    variant = catalog.find_variant(db, sku[:64])
    if variant is None or variant["sku"] != sku:
        abort(404)
    item = catalog.product_by_ref(db, variant["ref"], lang)
    if item is None:
        abort(404)
    chosen = next(v for v in catalog.variants(db, item["pk"], lang) if v["sku"] == sku)
    return render_template(
        "orders/product.html",
        product=item,
        variant=chosen,
        qty=stock.levels(db, [sku]).get(sku, 0),
    )


@bp.get("/orders/<order_id>")
def order_page(order_id: str) -> Any:
    """One order: lines, state, and what can be done next."""
    db = get_db()
    order = _order_or_404(order_id)
    handovers = db.execute_returning_dicts(
        "SELECT id, at, collector, collector_name, method FROM handovers WHERE order_id = ? "
        "ORDER BY at",
        [order_id],
    )
    return render_template("orders/order.html", order=order, handovers=handovers)


# --- Preparation -------------------------------------------------------------------


def _prep_context(order_id: str, **extra: Any) -> dict[str, Any]:
    db = get_db()
    order = _order_or_404(order_id)
    groups = orders.picking_list(db, order_id, current_lang())
    done = all(ln["qty_picked"] >= ln["qty"] or ln["short"] for ln in order["lines"])
    return {"order": order, "groups": groups, "all_done": done, **extra}


def _prep_response(order_id: str, status: int = 200, **extra: Any) -> Any:
    context = _prep_context(order_id, **extra)
    template = "orders/_prep.html" if htmx else "orders/prepare.html"
    return render_template(template, **context), status


@bp.get("/orders/<order_id>/prepare")
def prepare(order_id: str) -> Any:
    """The preparation screen: picking list by category, scan each item."""
    return _prep_response(order_id)


@bp.post("/orders/<order_id>/prepare/scan")
def prepare_scan(order_id: str) -> Any:
    """One scanned item: green when it belongs in the bag, red with the reason when not."""
    db = get_db()
    try:
        result = orders.scan_item(
            db, order_id, request.form.get("code", ""), _staff()["id"], device_name()
        )
    except OrderError as exc:
        if exc.code == "unknown_order":
            abort(404)
        return _prep_response(order_id, 409, cue="error", feedback=_message(exc))
    line = result["line"]
    text = _(
        "%(name)s: %(picked)d of %(qty)d",
        name=_name(line),
        picked=result["picked"],
        qty=result["qty"],
    )
    return _prep_response(order_id, cue="ok", feedback=text, last_line=line["line"])


@bp.post("/orders/<order_id>/lines/<int:line>/short")
def mark_short(order_id: str, line: int) -> Any:
    """A missing item: the order goes out partial; the hub tells the customer."""
    try:
        orders.mark_short(get_db(), order_id, line, _staff()["id"], device_name())
    except OrderError as exc:
        return _prep_response(order_id, 409, cue="error", feedback=_message(exc))
    return _prep_response(order_id, cue="ok", feedback=_("Marked short."))


@bp.post("/orders/<order_id>/ready")
def mark_ready(order_id: str) -> Any:
    """The bag is on its shelf: ready (the hub notifies the customer)."""
    try:
        orders.mark_ready(
            get_db(), order_id, request.form.get("shelf_slot", ""), _staff()["id"], device_name()
        )
    except OrderError as exc:
        if htmx:
            return _prep_response(order_id, 409, cue="error", feedback=_message(exc))
        return render_template(
            "orders/prepare.html", **_prep_context(order_id, cue="error", feedback=_message(exc))
        ), 409
    target = url_for("counter.order_page", order_id=order_id, ready=1)
    if htmx:
        from flask_htmx import make_response

        return make_response("", 200, redirect=target)
    return redirect(target)


@bp.get("/orders/<order_id>/picking")
def picking_list(order_id: str) -> Any:
    """The printable picking list."""
    return render_template("orders/picking.html", **_prep_context(order_id))


# --- Tickets -----------------------------------------------------------------------


def _store() -> dict[str, Any]:
    rows = get_db().execute_returning_dicts(
        "SELECT name, city, address FROM stores WHERE is_self = 1"
    )
    return rows[0] if rows else {"name": "", "address": ""}


def _ticket(img: Any, fmt: str, name: str) -> Response:
    if fmt == "png":
        body, mime = tickets.to_png(img), "image/png"
    elif fmt == "pdf":
        body, mime = tickets.to_pdf(img), "application/pdf"
    else:
        abort(404)
    resp = Response(body, mimetype=mime)
    resp.headers["Content-Disposition"] = f'inline; filename="{name}.{fmt}"'
    return resp


@bp.get("/orders/<order_id>/label.<fmt>")
def bag_label(order_id: str, fmt: str) -> Any:
    """The bag label (number, initials, shelf slot, a QR of the number) as PNG or PDF."""
    order = _order_or_404(order_id)
    if not order["shelf_slot"]:
        abort(404)
    order["item_count"] = sum(ln["qty_ready"] for ln in order["lines"])
    img = tickets.bag_label(order, order["shelf_slot"], order["number"], current_lang())
    return _ticket(img, fmt, f"label-{order['number']}")


@bp.get("/orders/<order_id>/handovers/<handover_id>/receipt.<fmt>")
def handover_receipt(order_id: str, handover_id: str, fmt: str) -> Any:
    """The hand-over receipt as PNG or PDF."""
    db = get_db()
    order = _order_or_404(order_id)
    record = orders.handover_record(db, handover_id)
    if record is None or record["order_id"] != order_id:
        abort(404)
    by_line = {ln["line"]: ln for ln in order["lines"]}
    lines = [
        {
            "name": _name(by_line[x["line"]]),
            "size": by_line[x["line"]]["size"],
            "colour": _colour(by_line[x["line"]]),
            "qty": x["qty"],
            "qty_ordered": by_line[x["line"]]["qty"],
        }
        for x in record["lines"]
    ]
    staff = db.execute("SELECT name FROM staff WHERE id = ?", [record["staff_id"]]).fetchone()
    img = tickets.handover_receipt(
        _store(),
        order,
        lines,
        staff[0] if staff else "",
        clock.parse_iso(record["at"]),
        current_lang(),
    )
    return _ticket(img, fmt, f"handover-{order['number']}")


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
        return render_template("orders/desk.html", error=_messages()["no_qr"]), 400
    try:
        order = orders.verify_token(get_db(), text)
    except OrderError as exc:
        return _qr_refused(exc)
    _remember_verified(order["id"], "qr")
    return redirect(url_for("counter.handover_form", order_id=order["id"]))


@bp.post("/orders/verify/code")
def verify_code() -> Any:
    """The order number and the 6-digit pickup code the customer received."""
    number = request.form.get("number", "").strip()[:40]
    try:
        order = orders.verify_code(
            get_db(), number, request.form.get("code", ""), _staff()["id"], device_name()
        )
    except OrderError as exc:
        status = 429 if exc.code == "code_locked" else 400
        return render_template("orders/desk.html", error=_message(exc), number=number), status
    _remember_verified(order["id"], "code")
    return redirect(url_for("counter.handover_form", order_id=order["id"]))


@bp.get("/orders/<order_id>/handover")
def handover_form(order_id: str) -> Any:
    """Choose what is handed over (all or part) and who collects."""
    order = _order_or_404(order_id)
    return render_template(
        "orders/handover.html",
        order=order,
        method=_verified(order_id),
        handover_id=orders.uuid.uuid4(),
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value or "0")
    except ValueError:
        return None


@bp.post("/orders/<order_id>/handover")
def do_handover(order_id: str) -> Any:
    """Record the hand-over (once, whatever the number of tablets)."""
    db = get_db()
    order = _order_or_404(order_id)
    # A double tap (or a resent form) after the hand-over went through: show its receipt,
    # not "check the customer first" (the verification was used up by the first tap).
    done = orders.handover_record(db, request.form.get("handover_id", "")[:64])
    if done is not None and done["order_id"] == order_id:
        return redirect(url_for("counter.handover_done", order_id=order_id, handover_id=done["id"]))
    method = _verified(order_id)
    manager_id = None
    if method is None:
        if request.form.get("override") and _is_manager():
            method, manager_id = "override", _staff()["id"]
        else:
            return _handover_error(order, OrderError("not_verified"), None, 403)
    lines: dict[int, int] = {}
    for ln in order["lines"]:
        qty = _int(request.form.get(f"qty_{ln['line']}"))
        if qty is None:
            return _handover_error(order, OrderError("invalid_qty"), method, 400)
        lines[ln["line"]] = qty
    try:
        record = orders.handover(
            db,
            order_id,
            staff_id=_staff()["id"],
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
        error=_message(exc),
        handover_id=request.form.get("handover_id") or orders.uuid.uuid4(),
    ), status


@bp.get("/orders/<order_id>/handovers/<handover_id>")
def handover_done(order_id: str, handover_id: str) -> Any:
    """Done: what was given, and the receipt to print."""
    order = _order_or_404(order_id)
    record = orders.handover_record(get_db(), handover_id)
    if record is None or record["order_id"] != order_id:
        abort(404)
    by_line = {ln["line"]: ln for ln in order["lines"]}
    return render_template("orders/handover_done.html", order=order, record=record, by_line=by_line)


@bp.post("/orders/<order_id>/unlock")
def unlock(order_id: str) -> Any:
    """A manager lifts a pickup-code lockout."""
    if not _is_manager():
        abort(403)
    try:
        orders.unlock_code(get_db(), order_id, _staff()["id"], device_name())
    except OrderError:
        abort(404)
    return redirect(url_for("counter.order_page", order_id=order_id, unlocked=1))


# --- Returns -----------------------------------------------------------------------


@bp.route("/returns", methods=["GET", "POST"])
def returns_find() -> Any:
    """Find the order of a return: its QR code, or its number and e-mail or last name."""
    error = None
    if request.method == "POST":
        db = get_db()
        try:
            order = orders.find_for_return(
                db,
                token=request.form.get("token", "").strip()[:1024],
                number=request.form.get("number", ""),
                email_or_name=request.form.get("who", ""),
            )
        except OrderError as exc:
            error = _message(exc)
        else:
            session["return_order"] = {"id": order["id"], "at": clock.now_s()}
            return redirect(url_for("counter.return_form", order_id=order["id"]))
    return render_template("orders/returns.html", error=error), 400 if error else 200


@bp.get("/returns/scan")
def returns_scan() -> Any:
    """A scan on the returns screen: the order's pickup QR opens its return; a product
    barcode opens the return with no order (a manager's) or, for staff, the product."""
    code = request.args.get("code", "").strip()[:1024]
    if not orders.looks_like_token(code):
        variant = _scanned_variant(code) if code else None
        if variant is not None:
            if _is_manager():
                return redirect(url_for("counter.return_no_order", code=variant["sku"]))
            return redirect(url_for("counter.product", sku=variant["sku"]))
    try:
        order = orders.find_for_return(get_db(), token=code)
    except OrderError as exc:
        return _qr_refused(exc, "orders/returns.html")
    session["return_order"] = {"id": order["id"], "at": clock.now_s()}
    return redirect(url_for("counter.return_form", order_id=order["id"]))


def _return_allowed(order_id: str) -> bool:
    found = session.get("return_order") or {}
    return found.get("id") == order_id and clock.now_s() - found.get("at", 0) <= VERIFIED_S


@bp.route("/returns/<order_id>", methods=["GET", "POST"])
def return_form(order_id: str) -> Any:
    """Choose the lines, quantities, condition, reason and refund."""
    order = _order_or_404(order_id)
    if not _return_allowed(order_id):
        return redirect(url_for("counter.returns_find"))
    error = None
    if request.method == "POST":
        lines = []
        for ln in order["lines"]:
            qty = _int(request.form.get(f"qty_{ln['line']}"))
            if qty is None:
                error = _messages()["invalid_qty"]
                break
            lines.append(
                {
                    "line": ln["line"],
                    "qty": qty,
                    "condition": request.form.get(f"cond_{ln['line']}", ""),
                }
            )
        if error is None:
            try:
                record = orders.record_return(
                    get_db(),
                    order_id,
                    lines,
                    reason=request.form.get("reason", ""),
                    refund=request.form.get("refund", ""),
                    staff_id=_staff()["id"],
                    return_id=request.form.get("return_id") or None,
                    device=device_name(),
                )
            except OrderError as exc:
                error = _message(exc)
            else:
                session.pop("return_order", None)
                return redirect(url_for("counter.return_done", return_id=record["id"]))
    return render_template(
        "orders/return_form.html",
        order=order,
        error=error,
        return_id=request.form.get("return_id") or orders.uuid.uuid4(),
    ), 400 if error else 200


@bp.route("/returns/no-order", methods=["GET", "POST"])
def return_no_order() -> Any:
    """A return with no order found: a manager decides."""
    if not _is_manager():
        abort(403)
    error = None
    if request.method == "POST":
        qty = _int(request.form.get("qty"))
        try:
            if qty is None:
                raise OrderError("invalid_qty")
            record = orders.record_return(
                get_db(),
                None,
                [
                    {
                        "code": request.form.get("code", ""),
                        "qty": qty,
                        "condition": request.form.get("condition", ""),
                    }
                ],
                reason=request.form.get("reason", ""),
                refund=request.form.get("refund", ""),
                staff_id=_staff()["id"],
                manager_id=_staff()["id"],
                device=device_name(),
            )
        except OrderError as exc:
            error = _message(exc)
        else:
            return redirect(url_for("counter.return_done", return_id=record["id"]))
    return render_template("orders/return_no_order.html", error=error), 400 if error else 200


@bp.get("/returns/done/<return_id>")
def return_done(return_id: str) -> Any:
    """The return is recorded: the receipt to print."""
    record = orders.return_record(get_db(), return_id)
    if record is None:
        abort(404)
    order = orders.get_order(get_db(), record["order_id"]) if record["order_id"] else None
    return render_template("orders/return_done.html", record=record, order=order)


@bp.get("/returns/done/<return_id>/receipt.<fmt>")
def return_receipt(return_id: str, fmt: str) -> Any:
    """The return receipt (with a QR of the return id) as PNG or PDF."""
    record = orders.return_record(get_db(), return_id)
    if record is None:
        abort(404)
    order = orders.get_order(get_db(), record["order_id"]) if record["order_id"] else None
    order = order or {"number": "—", "customer_name": ""}
    lines = [
        {"name": x["name"], "qty": x["qty"], "size": "", "colour": ""} for x in record["lines"]
    ]
    refund = {"original_payment": "original", "store_credit": "voucher"}[record["refund"]]
    img = tickets.return_receipt(
        _store(),
        order,
        lines,
        record["reason"],
        refund,
        clock.parse_iso(record["at"]),
        record["id"],
        current_lang(),
    )
    return _ticket(img, fmt, f"return-{record['id'][:8]}")
