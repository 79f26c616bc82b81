"""The web shop's cart (``/shop/panier``): add, change and remove lines, empty it, its QR
code to show in a store, open it by its link, and a kiosk's cart imported onto a phone."""

from __future__ import annotations

import hashlib
import io
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from app.core import cart_codec as cartcodec
from app.core.qr import render_qr
from app.hub.domain import cart_prices, carts, keys
from app.hub.storage import get_db
from app.hub.views.webshop import (
    blueprint,
    cart_for_writing,
    cart_message,
    display_name,
    safe_back,
    session_cart,
)

bp = blueprint("webshop_cart", __name__)


def _qty(value: str | None, low: int) -> int | None:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 3:
        return None
    qty = int(value)
    return qty if low <= qty <= carts.MAX_QTY else None


@bp.post("/panier/ajouter")
def add_to_cart() -> ResponseReturnValue:
    """Put the chosen size in the cart."""
    sku = request.form.get("sku", "")[:40]
    qty = _qty(request.form.get("qty", "1"), 1)
    back = safe_back(url_for("webshop_catalog.home"))
    if not sku:
        flash(_("Choose a size first."), "error")
        return redirect(back)
    if qty is None:
        flash(_("Quantities are 1 to %(n)d.", n=carts.MAX_QTY), "error")
        return redirect(back)
    try:
        carts.add_item(get_db(), cart_for_writing(), sku, qty)
    except carts.CartError as exc:
        flash(cart_message(exc), "error")
        return redirect(back)
    flash(_("Added to your cart."), "ok")
    return redirect(url_for("webshop_cart.cart"))


def _cart_context(cart: dict[str, Any] | None) -> dict[str, Any]:
    db = get_db()
    lines = carts.cart_lines(db, cart["id"]) if cart else []
    priced = cart_prices.priced_lines(db, lines)
    version = ""
    if cart:
        version = hashlib.sha256(f"{cart['id']}:{cart['updated_at']}:{lines}".encode()).hexdigest()[
            :12
        ]
    return {"cart": cart, "priced": priced, "qr_version": version}


@bp.get("/panier")
def cart() -> ResponseReturnValue:
    """The cart: lines, quantities, total, and its QR code to show in a store."""
    return render_template("hub/shop/cart.html", **_cart_context(session_cart()))


@bp.post("/panier/quantite")
def set_quantity() -> ResponseReturnValue:
    """Change a line's quantity (0 removes it)."""
    cart = session_cart()
    qty = _qty(request.form.get("qty"), 0)
    if cart is None:
        flash(_("Your cart is empty."), "error")
    elif qty is None:
        flash(_("Quantities are 1 to %(n)d.", n=carts.MAX_QTY), "error")
    else:
        try:
            carts.set_qty(get_db(), cart["id"], request.form.get("sku", "")[:40], qty)
        except carts.CartError as exc:
            flash(cart_message(exc), "error")
    return redirect(url_for("webshop_cart.cart"))


@bp.post("/panier/retirer")
def remove_line() -> ResponseReturnValue:
    """Take a line out of the cart."""
    cart = session_cart()
    if cart is not None:
        try:
            carts.set_qty(get_db(), cart["id"], request.form.get("sku", "")[:40], 0)
        except carts.CartError as exc:
            flash(cart_message(exc), "error")
        else:
            flash(_("Removed from your cart."), "ok")
    return redirect(url_for("webshop_cart.cart"))


@bp.post("/panier/vider")
def empty_cart() -> ResponseReturnValue:
    """Throw the cart away: its QR code stops working in every store."""
    cart = session_cart()
    if cart is not None:
        carts.close_cart(get_db(), cart["id"], "revoked")
    session.pop("cart", None)
    flash(_("Your cart is empty."), "ok")
    return redirect(url_for("webshop_cart.cart"))


@bp.get("/panier/qr.png")
def cart_qr() -> ResponseReturnValue:
    """This browser's cart as a QR code: a hub-signed ``cart`` token (app.core.cart_codec)."""
    cart = session_cart()
    db = get_db()
    if cart is None or not carts.cart_lines(db, cart["id"]):
        abort(404)
    private_key = keys.current_private_key(current_app.config["DATA_DIR"])
    token = carts.cart_token(db, private_key, cart["id"])
    buf = io.BytesIO()
    render_qr(token, box_size=6).save(buf, "PNG")
    return Response(buf.getvalue(), mimetype="image/png")


@bp.get("/panier/<cart_id>")
def open_cart(cart_id: str) -> ResponseReturnValue:
    """Open a cart by its link (``?k=`` access key), e.g. from another device."""
    db = get_db()
    cart = carts.get_cart(db, cart_id)
    if cart is None or not carts.check_access_key(db, cart["id"], request.args.get("k", "")):
        abort(404)
    if cart["status"] != "open":
        abort(410)
    session["cart"] = cart["id"]
    return redirect(url_for("webshop_cart.cart"))


@bp.get("/panier/importer")
def import_cart() -> ResponseReturnValue:
    """A kiosk's cart sent to this phone (``?l=SKU*QTY*PRICE,...``), at today's prices."""
    raw = request.args.get("l", "")
    try:
        lines = cartcodec.decode_lines(raw)
    except cartcodec.CartError:
        lines = None
    if not lines:
        return render_template("hub/shop/import_error.html"), 400
    db = get_db()
    # Reloading the page must not make a second cart: the same lines reopen the same one.
    sig = hashlib.sha256(raw.encode()).hexdigest()[:16]
    previous = session_cart()
    done = session.get("import") or {}
    if done.get("sig") == sig and previous is not None and previous["id"] == done.get("cart"):
        result = {
            "cart_id": previous["id"],
            "dropped": done.get("dropped", []),
            "changed": done.get("changed", []),
        }
        previous = carts.get_cart(db, session.get("prev_cart"))
    else:
        result = carts.import_lines(db, lines, "kiosk")
        if result["cart_id"] is None:
            return render_template("hub/shop/import_error.html", all_dropped=True), 400
        if previous is not None and carts.cart_lines(db, previous["id"]):
            session["prev_cart"] = previous["id"]
        else:
            previous = None
            session.pop("prev_cart", None)
        session["cart"] = result["cart_id"]
        session["import"] = {
            "sig": sig,
            "cart": result["cart_id"],
            "dropped": result["dropped"][:20],
            "changed": result["changed"][:20],
        }
    names = cart_prices.catalog_rows(db, [c["sku"] for c in result["changed"]])
    changed = [
        {**c, "name": display_name(names[c["sku"]], "name") if c["sku"] in names else c["sku"]}
        for c in result["changed"]
    ]
    context = _cart_context(carts.get_cart(db, result["cart_id"]))
    return render_template(
        "hub/shop/cart.html",
        imported={"dropped": result["dropped"], "changed": changed},
        previous=previous if previous is not None and previous["status"] == "open" else None,
        **context,
    )


@bp.post("/panier/precedent")
def restore_previous() -> ResponseReturnValue:
    """Go back to the cart this browser had before an import."""
    prev = carts.get_cart(get_db(), session.get("prev_cart"))
    if prev is not None and prev["status"] == "open":
        session["cart"] = prev["id"]
    session.pop("prev_cart", None)
    session.pop("import", None)
    return redirect(url_for("webshop_cart.cart"))
