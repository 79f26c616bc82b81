"""A cart brought to the kiosk: read from its scanned or photographed QR code (a cart
too big for its code is looked up at the hub), or a kind word on what went wrong.

The kiosk's ``/scan`` and the cart's photo page both open a cart through here.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import current_app, redirect, render_template, session, url_for
from flask_babel import lazy_gettext as _l

from app.core import clock
from app.store.domain import carts
from app.store.domain.carts import CartScanError
from app.store.storage import get_db
from app.store.sync import cart_lookup

MESSAGES = {
    "too_long": _l("This code is far too long to be a cart. Please scan your cart's QR code."),
    "not_a_token": _l(
        "This is not a cart QR code. Open your cart in the app or on the "
        "website and show its QR code."
    ),
    "url": _l(
        "This QR code opens a website: it is not a cart. Show the QR code from "
        '"Find my cart in store".'
    ),
    "pickup": _l("This is an order pickup code: show it at the click-and-collect counter."),
    "reservation": _l("This is a reservation ticket: show it to a member of staff."),
    "receipt": _l("This is a receipt, not a cart."),
    "forged": _l(
        "This QR code cannot be read as a cart from our shop. Please open your "
        "cart again on your phone and show its new QR code."
    ),
    "expired": _l(
        "This cart's QR code has expired. Open your cart again on your phone to get a new one."
    ),
    "revoked": _l("This cart was already ordered, reserved or emptied."),
    "offline": _l(
        "This cart is too big to be read without our network, which is "
        "unavailable right now. Please try again in a moment or ask a member of "
        "staff."
    ),
    "unknown_cart": _l("We could not find this cart. Please open it again on your phone."),
    "busy": _l("Too many carts are being looked up right now. Please try again in a minute."),
    "bad_cart": _l("This cart could not be read. Please open it again on your phone."),
    "no_qr": _l(
        "No QR code was found in the photo. Hold the code flat, fill the frame, and try again."
    ),
    # Problems of the kiosk's own cart (views/cart.py), on the same page.
    "full": _l("Your cart is full. Reserve or order these items first."),
    "nothing_available": _l("None of these items is available here right now."),
}


LOOKUP_TTL_S = 60
_looked_up: dict[str, tuple[float, dict[str, Any]]] = {}
_looked_up_lock = threading.Lock()


def _lookup() -> Any:
    """The hub look-up for carts too big for their QR code, remembered a minute per cart:
    a shopper scanning the same cart again does not use up the store's look-up budget
    at the hub (30 a minute) and keep other shoppers waiting."""
    client = current_app.extensions.get("hub_client")
    if client is None:
        return None

    def get_cart(cart_id: str) -> dict[str, Any]:
        now = time.monotonic()
        with _looked_up_lock:
            hit = _looked_up.get(cart_id)
            if hit and now - hit[0] < LOOKUP_TTL_S:
                return hit[1]
        cart = cart_lookup.get_cart(client, cart_id)
        with _looked_up_lock:
            for key in [k for k, (at, _) in _looked_up.items() if now - at >= LOOKUP_TTL_S]:
                del _looked_up[key]
            _looked_up[cart_id] = (now, cart)
        return cart

    return get_cart


def open_scanned(text: str) -> Any:
    """Open a scanned cart code (a scanner burst, a camera, a photo), or explain kindly."""
    try:
        scanned = carts.read_scanned(get_db(), text, lookup=_lookup())
    except CartScanError as exc:
        return problem(exc.code)
    lines = [[line.sku, line.qty, line.price_cents] for line in scanned.lines]
    session["cart"] = {
        "lines": lines,
        "id": scanned.cart_id,
        "self_contained": scanned.self_contained,
        "scanned_at": int(clock.now_s()),
    }
    return redirect(url_for("cart.show"))


def problem(code: str, status: int = 400) -> tuple[str, int]:
    """The cart problem page for one of ``MESSAGES``."""
    return render_template("kiosk/cart_problem.html", message=MESSAGES[code], code=code), status
