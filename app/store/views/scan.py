"""The staff scan (``/staff/scan``): a code scanned on any staff page, sent where it
belongs, and the product page a product barcode opens (``/staff/products/<sku>``).

Never the shopper kiosk's ``/scan`` (app/store/views/kiosk.py).
"""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.core import catalog, clock
from app.store.domain import customer_cards, customer_orders, reservation_codes, stock
from app.store.domain.orders import pickup, queries
from app.store.domain.orders.status import OrderError
from app.store.storage import get_db
from app.store.views import counter_customer
from app.store.views.counter_common import (
    messages,
    misread,
    qr_refused,
    remember_verified,
    scanned_variant,
)
from app.store.views.staff_common import staff_blueprint
from app.web.i18n import current_lang

bp = staff_blueprint("staff_scan", __name__)

_CARD_AT_COUNTER = _l(
    'This is a customer card ("My card"), not a pickup code: ask for the order\'s QR code, '
    "or its number and pickup code."
)
_CARD_NO_ORDER_HERE = _l(
    'This customer card ("My card") is valid, but this customer has no order at this store.'
)
_CARD_IN_URL = _l(
    'A customer card ("My card") is never read from a web address: scan it with the '
    "scanner or the camera."
)


@bp.route("/orders/scan", methods=["GET", "POST"])  # the older address, kept working
@bp.route("/scan", methods=["GET", "POST"])  # registered first: url_for builds this one
def scan() -> Any:
    """A scan on any staff page, dispatched by what the code is: a pickup QR opens its
    hand-over, a reservation ticket its reservation, an order number its order, a
    product barcode (or SKU) the product, a customer card (by POST only: its token never
    goes in a URL) the customer's orders here. Never the shopper kiosk's ``/scan``."""
    db = get_db()
    values = request.form if request.method == "POST" else request.args
    code = str(values.get("code", "")).strip()[:1024]
    if not code:
        return _refused(messages()["empty_code"], 400)
    if reservation_codes.looks_like_reservation(code):
        # A reservation ticket scanned on an order screen: open the reservation.
        return redirect(url_for("reservations_staff.scan", code=code))
    if customer_cards.looks_like_card(code):
        if request.method != "POST":
            return _refused(_CARD_IN_URL, 400)  # a link or the history: never read
        # « Ma carte »: the customer's orders here, when the hub told this store of them.
        card = customer_cards.verify_card(db, code)
        if not card.ok:
            return _refused(_CARD_AT_COUNTER, 400)
        customer_id = customer_orders.customer_for_card(db, card.card_id)
        if customer_id is None:
            # A valid card, but this store holds no order of theirs: say so plainly.
            return _refused(_CARD_NO_ORDER_HERE, 404)
        # The customer's id goes in the staff session, never in the page's URL.
        session[counter_customer.SESSION_KEY] = {"id": customer_id, "at": clock.now_s()}
        return redirect(url_for("staff_scan.customer"))
    if pickup.looks_like_token(code):
        try:
            order = pickup.verify_token(db, code)
        except OrderError as exc:
            return qr_refused(exc)
        remember_verified(order["id"], "qr")
        return redirect(url_for("counter.handover_form", order_id=order["id"]))
    order = queries.find_by_number(db, code)
    if order is not None:
        return redirect(url_for("counter.order_page", order_id=order["id"]))
    variant = scanned_variant(code)
    if variant is not None:
        return redirect(url_for("staff_scan.product", sku=variant["sku"]))
    if misread(code):
        return _refused(messages()["misread"], 400)
    if queries.normalise_number(code):
        return _refused(_("No order found for %(code)s.", code=code), 404)
    return _refused(messages()["unknown_code"], 404)


bp.add_url_rule("/customer", "customer", counter_customer.customer_page)


def _refused(message: str, status: int) -> Any:
    return render_template("orders/desk.html", error=message), status


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
