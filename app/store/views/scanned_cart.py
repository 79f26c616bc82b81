"""A cart brought to the kiosk: read from its scanned or photographed QR code (a cart
too big for its code is looked up at the hub), or a kind word on what went wrong.

The kiosk's ``/scan`` (the handheld scanner, the camera) and the staff tablet's photo
both open a cart through here. Over a kiosk cart that already holds items the phone
cart waits for the shopper's choice, merge (the default) or replace: nothing is lost
silently.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from flask import abort, current_app, redirect, render_template, session, url_for
from flask_babel import lazy_gettext as _l

from app.core import cart_codec, clock
from app.store.domain import carts, staff
from app.store.domain.carts import CartScanError
from app.store.storage import get_db
from app.store.sync import cart_lookup, memo
from app.web.i18n import current_lang

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


def _lookup() -> Any:
    """The hub look-up for carts too big for their QR code, remembered a minute per cart:
    a shopper scanning the same cart again does not use up the store's look-up budget
    at the hub (30 a minute) and keep other shoppers waiting. Remembered in ``memo.db``
    (app/store/sync/memo.py), so whichever web worker takes the next scan knows it."""
    client = current_app.extensions.get("hub_client")
    if client is None:
        return None
    looked_up = memo.Memo(
        Path(current_app.config["DATA_DIR"]) / memo.MEMO_NAME, "cart", LOOKUP_TTL_S
    )

    def get_cart(cart_id: str) -> dict[str, Any]:
        cart = looked_up.get(cart_id)
        if cart is None:
            cart = cart_lookup.get_cart(client, cart_id)
            looked_up.put(cart_id, cart)
        return cart

    return get_cart


PENDING_TTL_S = 600  # a phone cart waiting for "merge or replace" is kept ten minutes
MERGED_IDS_KEPT = 8  # ids of the phone carts merged into this one, kept in the cookie


def open_scanned(text: str) -> Any:
    """Open a scanned cart code (a scanner burst, a camera, a photo), or explain kindly.

    An empty kiosk cart takes the phone cart at once. A kiosk cart already holding items
    is never replaced silently: the phone cart waits in the session (signed by the
    server, so the browser cannot change it) while the shopper chooses to merge or to
    replace (``cart.merge``).
    """
    try:
        scanned = carts.read_scanned(get_db(), text, lookup=_lookup())
    except CartScanError as exc:
        return problem(exc.code)
    lines = [[line.sku, line.qty, line.price_cents] for line in scanned.lines]
    brought = {
        "lines": lines,
        "id": scanned.cart_id,
        "self_contained": scanned.self_contained,
        "scanned_at": int(clock.now_s()),
    }
    cart = session.get("cart", {})
    held = cart.get("lines") or []
    if not held:
        session.pop("pending_cart", None)
        session["cart"] = brought
        return redirect(url_for("cart.show"))
    if scanned.cart_id == cart.get("id") or scanned.cart_id in (cart.get("merged") or []):
        # This phone cart was already brought or merged here: merging it again would
        # count its items twice. What was added on the phone since is brought in (each
        # item at least the phone's quantity, nothing removed), and the shopper is told.
        session.pop("pending_cart", None)
        updated, left_out = carts.update_lines(held, lines)
        if updated == [list(line) for line in held]:
            return redirect(url_for("cart.show", deja=1))
        session["cart"] = {**cart, "lines": updated}
        return redirect(url_for("cart.show", deja=1, maj=1, reste=len(left_out) or None))
    if [line[:2] for line in held] == [line[:2] for line in lines]:
        # The same items scanned twice: they are already here, as they were brought.
        session.pop("pending_cart", None)
        return redirect(url_for("cart.show"))
    session["pending_cart"] = {**brought, "key": uuid.uuid4().hex}
    return redirect(url_for("cart.merge"))


def pending_cart() -> dict[str, Any] | None:
    """The phone cart waiting for the shopper's choice, or None (none, or too old)."""
    pending = session.get("pending_cart")
    if not isinstance(pending, dict):
        return None
    if clock.now_s() - pending.get("scanned_at", 0) > PENDING_TTL_S:
        session.pop("pending_cart", None)
        return None
    return pending


def merge_page() -> Any:
    """The question, with both carts shown: merge is the first, prominent answer."""
    pending = pending_cart()
    if pending is None:
        return redirect(url_for("cart.show"))
    db, lang = get_db(), current_lang()
    held = [list(line) for line in session.get("cart", {}).get("lines", [])]
    _merged, left_out, capped = carts.merge_lines(held, pending["lines"])
    return render_template(
        "kiosk/cart_merge.html",
        pending=pending,
        kiosk=carts.cart_view(db, [tuple(line) for line in held], lang),
        phone=carts.cart_view(db, [tuple(line) for line in pending["lines"]], lang),
        left_out=len(left_out),
        max_lines=carts.MAX_KIOSK_LINES,
        capped=sum(units for _sku, units, _price in capped),
        max_qty=cart_codec.MAX_QTY,
    )


def apply_choice(choice: str, key: str) -> Any:
    """Merge the waiting phone cart into this one, replace this one by it (only on that
    explicit tap), or keep this one and forget the phone cart."""
    if choice not in ("merge", "replace", "keep"):
        abort(400)
    pending = pending_cart()
    if pending is None:
        return redirect(url_for("cart.show"))
    if key != pending.get("key"):
        # A page shown for another scanned cart: ask again about the one waiting.
        return redirect(url_for("cart.merge"))
    session.pop("pending_cart", None)
    brought = {k: pending[k] for k in ("id", "self_contained", "scanned_at")}
    if choice == "merge":
        held = [list(line) for line in session.get("cart", {}).get("lines", [])]
        merged, _left_out, _capped = carts.merge_lines(held, pending["lines"])
        cart = session.get("cart", {})
        # The phone carts merged here (and this cart's own): scanned again, they are
        # recognised and not added a second time.
        ids = [*(cart.get("merged") or []), cart.get("id"), pending["id"]]
        ids = list(dict.fromkeys(i for i in ids if i))[-MERGED_IDS_KEPT:]
        session["cart"] = {**cart, **brought, "lines": merged, "merged": ids}
    elif choice == "replace":
        session["cart"] = {**brought, "lines": pending["lines"]}
    return redirect(url_for("cart.show"))


STAFF_LOGIN_KEYS = ("staff", "staff_sid", "staff_seen")  # a staff login, in the session


def staff_tablet() -> bool:
    """Whether a staff member is logged in on this browser (a staff tablet), not a
    shopper at the kiosk: the staff pages' live-session check, read only."""
    member = session.get("staff")
    if not isinstance(member, dict) or not member.get("id"):
        return False
    if clock.now_s() - session.get("staff_seen", 0) > current_app.config["STAFF_IDLE_SECONDS"]:
        return False
    return bool(staff.session_live(get_db(), session.get("staff_sid"), member["id"]))


def problem(code: str, status: int = 400) -> tuple[str, int]:
    """The cart problem page for one of ``MESSAGES``."""
    return render_template("kiosk/cart_problem.html", message=MESSAGES[code], code=code), status
