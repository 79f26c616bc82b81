"""Returns at the counter (``/staff/returns``): find the order (its QR code, or its
number and the customer's e-mail or last name), choose what comes back and how it is
refunded, print the receipt; a manager takes back an item with no order.

Staff login is required (staff_common); app/store/domain/orders/ audits every return.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import abort, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from app.core import clock
from app.store.domain import tickets
from app.store.domain.orders import pickup, queries, returns
from app.store.domain.orders.status import OrderError
from app.store.storage import get_db
from app.store.views import counter_customer
from app.store.views.counter_common import (
    VERIFIED_S,
    message,
    messages,
    order_or_404,
    parse_qty,
    qr_refused,
    scanned_variant,
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
from app.web.i18n import current_lang

bp = staff_blueprint("returns", __name__)


def _found(order_id: str) -> Any:
    """The order of the return is found: remember it a while, and open its return."""
    session["return_order"] = {"id": order_id, "at": clock.now_s()}
    return redirect(url_for("returns.return_form", order_id=order_id))


@bp.route("/returns", methods=["GET", "POST"])
def find() -> Any:
    """Find the order of a return: its QR code, or its number and first name."""
    error = None
    if request.method == "POST":
        db = get_db()
        try:
            order = returns.find_for_return(
                db,
                token=request.form.get("token", "").strip()[:1024],
                number=request.form.get("number", ""),
                first_name=request.form.get("who", "")[:200],
            )
        except OrderError as exc:
            error = message(exc)
        else:
            return _found(order["id"])
    return render_template("orders/returns.html", error=error), 400 if error else 200


@bp.post("/returns/card/<order_id>")
def from_card(order_id: str) -> Any:
    """A return taken from the customer's scanned « Ma carte » (their page at the
    counter): the card proved who they are, no order number or name needed."""
    order = order_or_404(order_id)
    customer_id = counter_customer.scanned_customer_id()
    if customer_id is None or order.get("customer_id") != customer_id:
        return redirect(url_for("returns.find"))  # the card's ten minutes are over
    return _found(order_id)


@bp.get("/returns/scan")
def scan() -> Any:
    """A scan on the returns screen: the order's pickup QR opens its return; a product
    barcode opens the return with no order (a manager's) or, for staff, the product."""
    code = request.args.get("code", "").strip()[:1024]
    if not pickup.looks_like_token(code):
        variant = scanned_variant(code) if code else None
        if variant is not None:
            if is_manager():
                return redirect(url_for("returns.no_order", code=variant["sku"]))
            return redirect(url_for("staff_scan.product", sku=variant["sku"]))
    try:
        order = returns.find_for_return(get_db(), token=code)
    except OrderError as exc:
        return qr_refused(exc, "orders/returns.html")
    return _found(order["id"])


def _return_allowed(order_id: str) -> bool:
    found = session.get("return_order") or {}
    return found.get("id") == order_id and clock.now_s() - found.get("at", 0) <= VERIFIED_S


@bp.route("/returns/<order_id>", methods=["GET", "POST"])
def return_form(order_id: str) -> Any:
    """Choose the lines, quantities, condition, reason and refund."""
    order = order_or_404(order_id)
    if not _return_allowed(order_id):
        return redirect(url_for("returns.find"))
    error = None
    if request.method == "POST":
        lines = []
        for ln in order["lines"]:
            qty = parse_qty(request.form.get(f"qty_{ln['line']}"))
            if qty is None:
                error = messages()["invalid_qty"]
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
                record = returns.record_return(
                    get_db(),
                    order_id,
                    lines,
                    reason=request.form.get("reason", ""),
                    refund=request.form.get("refund", ""),
                    staff_id=current_staff()["id"],
                    return_id=request.form.get("return_id") or None,
                    device=device_name(),
                )
            except OrderError as exc:
                error = message(exc)
            else:
                session.pop("return_order", None)
                return redirect(url_for("returns.done", return_id=record["id"]))
    return render_template(
        "orders/return_form.html",
        order=order,
        error=error,
        return_id=request.form.get("return_id") or uuid.uuid4(),
    ), 400 if error else 200


@bp.route("/returns/no-order", methods=["GET", "POST"])
@manager_required
def no_order() -> Any:
    """A return with no order found: a manager decides."""
    error = None
    if request.method == "POST":
        qty = parse_qty(request.form.get("qty"))
        try:
            if qty is None:
                raise OrderError("invalid_qty")
            record = returns.record_return(
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
                staff_id=current_staff()["id"],
                manager_id=current_staff()["id"],
                device=device_name(),
            )
        except OrderError as exc:
            error = message(exc)
        else:
            return redirect(url_for("returns.done", return_id=record["id"]))
    return render_template("orders/return_no_order.html", error=error), 400 if error else 200


def _record_or_404(return_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A recorded return and its order (None for a return with no order), or 404."""
    record = queries.return_record(get_db(), return_id)
    if record is None:
        abort(404)
    order = queries.get_order(get_db(), record["order_id"]) if record["order_id"] else None
    return record, order


@bp.get("/returns/done/<return_id>")
def done(return_id: str) -> Any:
    """The return is recorded: the receipt to print."""
    record, order = _record_or_404(return_id)
    return render_template("orders/return_done.html", record=record, order=order)


@bp.get("/returns/done/<return_id>/receipt")
def receipt_print(return_id: str) -> Any:
    """The return receipt's print view."""
    record, order = _record_or_404(return_id)
    return ticket_print_page(
        "returns.receipt",
        return_id=return_id,
        heading=_("Return receipt %(number)s", number=order["number"])
        if order
        else _("Return receipt"),
        back_url=url_for("returns.done", return_id=return_id),
        back_label=_("Back"),
    )


@bp.get("/returns/done/<return_id>/receipt.<fmt>")
def receipt(return_id: str, fmt: str) -> Any:
    """The return receipt (with a QR of the return id) as PNG or PDF."""
    record, order = _record_or_404(return_id)
    order = order or {"number": "—", "customer_name": ""}
    lines = [
        {"name": x["name"], "qty": x["qty"], "size": "", "colour": ""} for x in record["lines"]
    ]
    refund = {"original_payment": "original", "store_credit": "voucher"}[record["refund"]]
    img = tickets.return_receipt(
        store_details(),
        order,
        lines,
        record["reason"],
        refund,
        clock.parse_iso(record["at"]),
        record["id"],
        current_lang(),
    )
    return ticket_response(img, fmt, f"return-{record['id'][:8]}")
