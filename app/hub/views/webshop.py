"""The demo web shop served by the hub (``/shop``): browse, cart, cart QR, click-and-collect.

Made for a phone: one column, big tap targets, no script. The shopper's cart id and
the orders placed from this browser live in the signed session cookie; carts, prices
and stock are the hub's (app/hub/domain/carts.py). Checkout places the order with
:func:`app.hub.domain.orders.create_order` (through :func:`carts.checkout`, which revokes
the cart) and ends on the order's own page (shop.py). ``/shop/panier/importer`` takes a
kiosk's cart (``?l=``, app/core/cart_codec.py) onto the phone.

This module is what the shop's pages share: :func:`blueprint` (each module's blueprint
under ``/shop``, with the shop's error pages and ``Vary: Cookie``), the shop's template
globals (:func:`shop_context`) and this browser's cart. The pages are in
webshop_catalog.py (browsing), webshop_cart.py (the cart) and webshop_checkout.py
(click-and-collect, my orders).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request, session
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.hub import database as hdb
from app.hub.domain import carts
from app.hub.storage import get_db
from app.hub.views import shop_visit
from app.web.i18n import LANGUAGES, current_lang
from app.web.security import body_limit, format_size, safe_next


def shop_context() -> dict[str, Any]:
    """The cart badge and language on every shop page (an app context processor)."""
    # Shop pages (every one is under /shop/), and the shop's own error page for an
    # address under /shop that matches no route.
    if not request.path.startswith("/shop/"):
        return {}
    return {"cart_count": cart_count(), "lang": current_lang(), "LANGUAGES": LANGUAGES}


def cart_count() -> int:
    cart = session_cart()
    if cart is None:
        return 0
    # int(): PostgreSQL's sum of bigints is a numeric (a Decimal in Python).
    return int(
        hdb.scalar(
            get_db(),
            "SELECT coalesce(sum(qty), 0) FROM cart_lines WHERE cart_id = ?",
            [cart["id"]],
        )
    )


def session_cart() -> dict[str, Any] | None:
    """This browser's cart if it is still open (an ordered one is forgotten)."""
    cart = carts.get_cart(get_db(), session.get("cart"))
    if cart is None or cart["status"] != "open":
        return None
    return cart


def cart_for_writing() -> str:
    """This browser's open cart, created on first use."""
    cart = session_cart()
    if cart is not None:
        return cart["id"]
    cart_id = carts.create_cart(get_db(), "web")
    session["cart"] = cart_id
    return cart_id


def safe_back(default: str) -> str:
    """Where to go back after a form: a path on this site only (security.safe_next)."""
    return safe_next(request.form.get("next"), default)


def display_name(row: dict[str, Any], field: str) -> str:
    """A catalog row's ``field`` in the shopper's language (French when it has none)."""
    return row.get(f"{field}_{current_lang()}") or row.get(f"{field}_fr") or ""


def cart_message(exc: carts.CartError) -> str:
    """What a refused cart change says to the shopper."""
    return {
        "unknown_sku": _("This item is no longer sold."),
        "bad_qty": _("Quantities are 1 to %(n)d.", n=carts.MAX_QTY),
        "too_many_lines": _("Your cart is full (%(n)d items at most).", n=carts.MAX_LINES),
        "cart_closed": _("This cart was already ordered: start a new one."),
        "unknown_cart": _("This cart no longer exists."),
        "empty_cart": _("Your cart is empty."),
    }.get(exc.code, _("That did not work; please try again."))


def csrf_failed(exc: CSRFError) -> ResponseReturnValue:
    """A form posted without its token, or after the session changed: say what to do."""
    return render_template("hub/shop/error.html", code=400, csrf=True), 400


def shop_error(exc: HTTPException) -> ResponseReturnValue:
    """Shop errors are pages for people, not the API's JSON."""
    limit = None
    if exc.code == 413:  # a body past the shop's limit: say the limit
        limit = format_size(body_limit() or 0, _("MiB"), _("KiB"))
    html = render_template("hub/shop/error.html", code=exc.code, csrf=False, limit=limit)
    return html, exc.code or 500


def vary(response: Response) -> Response:
    """Pages depend on the session cookie (cart, language)."""
    response.vary.add("Cookie")
    return response


def blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint of the web shop, under ``/shop``: its errors are pages for people
    (a form without its CSRF token, a 404, a body past the shop's limit), and its pages
    depend on the session cookie (cart, language)."""
    shop = Blueprint(name, import_name, url_prefix="/shop")
    shop.register_error_handler(CSRFError, csrf_failed)
    shop.register_error_handler(HTTPException, shop_error)
    shop.after_request(vary)
    shop.before_request(shop_visit.note_visit)  # a signed-in visit is a contact
    return shop
