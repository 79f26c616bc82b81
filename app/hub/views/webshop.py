"""The demo web shop served by the hub (``/shop``): browse, cart, cart QR, click-and-collect.

Made for a phone: one column, big tap targets, no script. The shopper's cart id and
the orders placed from this browser live in the signed session cookie; carts, prices
and stock are the hub's (:mod:`.carts`). Checkout places the order with
:func:`app.hub.orders.create_order` (through :func:`.carts.checkout`, which revokes the
cart) and ends on the order's own page (:mod:`.shop`). ``/shop/panier/importer`` takes
a kiosk's cart (``?l=``, :func:`app.carts.encode_lines`) onto the phone.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.core import cart_codec as cartcodec
from app.core import catalog
from app.core.qr import render_qr
from app.core.search import QueryTooLong, fold, tokens
from app.hub.domain import carts, keys
from app.hub.domain.order_rows import get_order_by_number
from app.hub.domain.orders import OrderError, check_access_key
from app.hub.storage import get_db
from app.hub.views.shop import STATUS_LABELS
from app.web.i18n import LANGUAGES, current_lang
from app.web.security import body_limit, format_size, safe_next

bp = Blueprint("webshop", __name__, url_prefix="/shop")

PAGE_SIZE = 20
MAX_PAGE = 1000
MY_ORDERS_MAX = 20  # the session cookie holds at most this many (number, key) pairs
SEARCH_LIMIT = 40
_HEX = re.compile(r"#[0-9A-Fa-f]{6}")


# --------------------------------------------------------------------------- helpers


@bp.app_context_processor
def shop_globals() -> dict[str, Any]:
    """The cart badge and language on every shop page."""
    # Shop pages, and the shop's own error page for an address under /shop that
    # matches no route (no blueprint then).
    if request.blueprint != "webshop" and not request.path.startswith("/shop/"):
        return {}
    return {"cart_count": _cart_count(), "lang": current_lang(), "LANGUAGES": LANGUAGES}


def _cart_count() -> int:
    cart = _session_cart()
    if cart is None:
        return 0
    row = (
        get_db()
        .execute("SELECT coalesce(sum(qty), 0) FROM cart_lines WHERE cart_id = ?", [cart["id"]])
        .fetchone()
    )
    return int(row[0])


def _session_cart() -> dict[str, Any] | None:
    """This browser's cart if it is still open (an ordered one is forgotten)."""
    cart = carts.get_cart(get_db(), session.get("cart"))
    if cart is None or cart["status"] != "open":
        return None
    return cart


def _cart_for_writing() -> str:
    """This browser's open cart, created on first use."""
    cart = _session_cart()
    if cart is not None:
        return cart["id"]
    cart_id = carts.create_cart(get_db(), "web")
    session["cart"] = cart_id
    return cart_id


def _safe_next(default: str) -> str:
    """Where to go back after a form: a path on this site only (security.safe_next)."""
    return safe_next(request.form.get("next"), default)


def _int_arg(value: str | None, default: int, low: int, high: int) -> int:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 6:
        return default
    return max(low, min(high, int(value)))


def _name(row: dict[str, Any], field: str) -> str:
    return row.get(f"{field}_{current_lang()}") or row.get(f"{field}_fr") or ""


def _swatch(hex_colour: str) -> str:
    """A colour dot as an SVG data URL: the CSP forbids style attributes, not data images."""
    fill = hex_colour if _HEX.fullmatch(hex_colour or "") else "#888888"
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' width='28' height='28'>"
        f"<circle cx='14' cy='14' r='12' fill='{fill}' stroke='#4a5866' stroke-width='1.5'/></svg>"
    )
    return "data:image/svg+xml," + quote(svg, safe="/:='")


def _cards(db: Any, products: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Product summaries with today's web price (promotions through the one pricing door)."""
    for p in products:
        p["price_now"] = carts.unit_price(db, p)
    return products


@bp.errorhandler(CSRFError)
def csrf_failed(exc: CSRFError) -> ResponseReturnValue:
    """A form posted without its token, or after the session changed: say what to do."""
    return render_template("hub/shop/error.html", code=400, csrf=True), 400


@bp.errorhandler(HTTPException)
def shop_error(exc: HTTPException) -> ResponseReturnValue:
    """Shop errors are pages for people, not the API's JSON."""
    limit = None
    if exc.code == 413:  # a body past the shop's limit: say the limit
        limit = format_size(body_limit() or 0, _("MiB"), _("KiB"))
    html = render_template("hub/shop/error.html", code=exc.code, csrf=False, limit=limit)
    return html, exc.code or 500


@bp.after_request
def vary(response: Response) -> Response:
    """Pages depend on the session cookie (cart, language)."""
    response.vary.add("Cookie")
    return response


# --------------------------------------------------------------------------- browsing


@bp.get("/")
def home() -> ResponseReturnValue:
    """The shop's home: search box and categories."""
    categories = catalog.categories(get_db(), current_lang())
    return render_template("hub/shop/home.html", categories=categories)


@bp.get("/recherche")
def search() -> ResponseReturnValue:
    """Products whose name, brand or reference contain every word typed (accents ignored)."""
    query = request.args.get("q", "")
    db = get_db()
    try:
        words = tokens(query)
    except QueryTooLong:
        words = None
    pks: list[int] = []
    if words:
        # Plain LIKE over the hub's catalog (no FTS index at the hub): a full scan of a
        # few thousand products with a folded copy of each name, well under 50 ms.
        db.conn.create_function("shop_fold", 1, fold, deterministic=True)
        clause = " AND ".join(
            "shop_fold(p.name_fr || ' ' || p.name_en || ' ' || p.brand || ' ' || p.ref) "
            "LIKE ? ESCAPE '\\'"
            for _w in words
        )
        params = [
            "%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            for w in words
        ]
        pks = [
            r[0]
            for r in db.execute(
                f"SELECT p.pk FROM products p WHERE {clause} ORDER BY p.name_fr, p.pk LIMIT ?",  # noqa: S608
                [*params, SEARCH_LIMIT],
            ).fetchall()
        ]
    products = _cards(db, catalog.products_by_pks(db, pks, current_lang()))
    status = 400 if words is None else 200
    return render_template(
        "hub/shop/search.html", query=query[:100], products=products, too_long=words is None
    ), status


@bp.get("/rayon/<slug>")
def category(slug: str) -> ResponseReturnValue:
    """A category's products, a page at a time."""
    db = get_db()
    cat = catalog.category_by_slug(db, slug[:80], current_lang())
    if cat is None:
        abort(404)
    page = _int_arg(request.args.get("page"), 1, 1, MAX_PAGE)
    rows = catalog.products_in_category(
        db, cat["id"], current_lang(), offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1
    )
    return render_template(
        "hub/shop/category.html",
        category=cat,
        products=_cards(db, rows[:PAGE_SIZE]),
        page=page,
        has_next=len(rows) > PAGE_SIZE,
    )


@bp.get("/produit/<ref>")
def product(ref: str) -> ResponseReturnValue:
    """A product: pictures, price, colour and size chooser, add to cart."""
    db = get_db()
    lang = current_lang()
    p = catalog.product_by_ref(db, ref[:40], lang)
    if p is None:
        abort(404)
    variants = catalog.variants(db, p["pk"], lang)
    if not variants:
        abort(404)
    colours: dict[str, dict[str, Any]] = {}
    for v in variants:
        colours.setdefault(
            v["colour_code"],
            {"code": v["colour_code"], "name": v["colour"], "dot": _swatch(v["colour_hex"])},
        )
    chosen = request.args.get("couleur", "")
    if chosen not in colours:
        chosen = variants[0]["colour_code"]
    sizes = [v for v in variants if v["colour_code"] == chosen]
    marks = ",".join("?" * len(sizes))
    online = dict(
        db.execute(
            f"SELECT sku, sum(max(qty, 0)) FROM stock_levels WHERE sku IN ({marks}) GROUP BY sku",  # noqa: S608
            [v["sku"] for v in sizes],
        ).fetchall()
    )
    for v in sizes:
        base = v["price_cents"] if v["price_cents"] is not None else p["price_cents"]
        v["base_cents"] = base
        v["price_now"] = carts.unit_price(db, p, v)
        v["in_stores"] = int(online.get(v["sku"]) or 0)
    return render_template(
        "hub/shop/product.html",
        product=p,
        colours=list(colours.values()),
        chosen=chosen,
        sizes=sizes,
        price_now=min(v["price_now"] for v in sizes),
        base_price=min(v["base_cents"] for v in sizes),
    )


@bp.get("/image/<ref>/<int:n>.png")
def picture(ref: str, n: int) -> ResponseReturnValue:
    """A product picture, drawn once with Pillow (as the kiosk's) and served from disk."""
    if n not in (0, 1, 2):
        abort(404)
    from app.core import pictures  # Pillow's drawing code loads only when a picture is drawn

    wanted = request.args.get("couleur")
    path = pictures.product_picture(
        get_db(),
        Path(current_app.config["DATA_DIR"]) / "pictures",
        ref,
        n,
        lambda v: v["colour_code"] == wanted,
    )
    if path is None:
        abort(404)
    # Drawn once per product and colour and never changed: phones may keep it a day.
    return send_file(path, mimetype="image/png", max_age=86400)


@bp.post("/langue")
def set_lang() -> ResponseReturnValue:
    """Switch the shop's language (French first, English)."""
    lang = request.form.get("lang", "")
    if lang not in LANGUAGES:
        abort(400)
    session["lang"] = lang
    return redirect(_safe_next(url_for("webshop.home")))


# --------------------------------------------------------------------------- cart


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
    back = _safe_next(url_for("webshop.home"))
    if not sku:
        flash(_("Choose a size first."), "error")
        return redirect(back)
    if qty is None:
        flash(_("Quantities are 1 to %(n)d.", n=carts.MAX_QTY), "error")
        return redirect(back)
    try:
        carts.add_item(get_db(), _cart_for_writing(), sku, qty)
    except carts.CartError as exc:
        flash(_cart_message(exc), "error")
        return redirect(back)
    flash(_("Added to your cart."), "ok")
    return redirect(url_for("webshop.cart"))


def _cart_message(exc: carts.CartError) -> str:
    return {
        "unknown_sku": _("This item is no longer sold."),
        "bad_qty": _("Quantities are 1 to %(n)d.", n=carts.MAX_QTY),
        "too_many_lines": _("Your cart is full (%(n)d items at most).", n=carts.MAX_LINES),
        "cart_closed": _("This cart was already ordered: start a new one."),
        "unknown_cart": _("This cart no longer exists."),
        "empty_cart": _("Your cart is empty."),
    }.get(exc.code, _("That did not work; please try again."))


def _cart_context(cart: dict[str, Any] | None) -> dict[str, Any]:
    db = get_db()
    lines = carts.cart_lines(db, cart["id"]) if cart else []
    priced = carts.priced_lines(db, lines)
    version = ""
    if cart:
        version = hashlib.sha256(f"{cart['id']}:{cart['updated_at']}:{lines}".encode()).hexdigest()[
            :12
        ]
    return {"cart": cart, "priced": priced, "qr_version": version}


@bp.get("/panier")
def cart() -> ResponseReturnValue:
    """The cart: lines, quantities, total, and its QR code to show in a store."""
    return render_template("hub/shop/cart.html", **_cart_context(_session_cart()))


@bp.post("/panier/quantite")
def set_quantity() -> ResponseReturnValue:
    """Change a line's quantity (0 removes it)."""
    cart = _session_cart()
    qty = _qty(request.form.get("qty"), 0)
    if cart is None:
        flash(_("Your cart is empty."), "error")
    elif qty is None:
        flash(_("Quantities are 1 to %(n)d.", n=carts.MAX_QTY), "error")
    else:
        try:
            carts.set_qty(get_db(), cart["id"], request.form.get("sku", "")[:40], qty)
        except carts.CartError as exc:
            flash(_cart_message(exc), "error")
    return redirect(url_for("webshop.cart"))


@bp.post("/panier/retirer")
def remove_line() -> ResponseReturnValue:
    """Take a line out of the cart."""
    cart = _session_cart()
    if cart is not None:
        try:
            carts.set_qty(get_db(), cart["id"], request.form.get("sku", "")[:40], 0)
        except carts.CartError as exc:
            flash(_cart_message(exc), "error")
        else:
            flash(_("Removed from your cart."), "ok")
    return redirect(url_for("webshop.cart"))


@bp.post("/panier/vider")
def empty_cart() -> ResponseReturnValue:
    """Throw the cart away: its QR code stops working in every store."""
    cart = _session_cart()
    if cart is not None:
        carts.close_cart(get_db(), cart["id"], "revoked")
    session.pop("cart", None)
    flash(_("Your cart is empty."), "ok")
    return redirect(url_for("webshop.cart"))


@bp.get("/panier/qr.png")
def cart_qr() -> ResponseReturnValue:
    """This browser's cart as a QR code: a hub-signed ``cart`` token (app.carts)."""
    cart = _session_cart()
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
    return redirect(url_for("webshop.cart"))


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
    previous = _session_cart()
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
    names = carts.catalog_rows(db, [c["sku"] for c in result["changed"]])
    changed = [
        {**c, "name": _name(names[c["sku"]], "name") if c["sku"] in names else c["sku"]}
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
    return redirect(url_for("webshop.cart"))


# --------------------------------------------------------------------------- checkout


def _checkout_context(cart: dict[str, Any], store_id: str | None) -> dict[str, Any]:
    db = get_db()
    lines = carts.cart_lines(db, cart["id"])
    priced = carts.priced_lines(db, lines)
    stores = carts.stores(db)
    counts = carts.availability(db, lines)
    for s in stores:
        s["lines_ok"] = counts.get(s["id"], 0)
    store = next((s for s in stores if s["id"] == store_id), None)
    short = 0
    if store is not None:
        levels = carts.store_levels(db, store["id"], [ln["sku"] for ln in priced["lines"]])
        for ln in priced["lines"]:
            ln["here"] = levels.get(ln["sku"], 0)
            short += ln["here"] < ln["qty"]
    return {
        "cart": cart,
        "priced": priced,
        "stores": stores,
        "store": store,
        "n_lines": len(priced["lines"]),
        "short": short,
    }


@bp.get("/commande")
def checkout() -> ResponseReturnValue:
    """Click-and-collect: choose a store (its stock for every line), then your details."""
    cart = _session_cart()
    if cart is None or not carts.cart_lines(get_db(), cart["id"]):
        flash(_("Your cart is empty."), "error")
        return redirect(url_for("webshop.cart"))
    store_id = request.args.get("magasin", "")[:20] or None
    context = _checkout_context(cart, store_id)
    if store_id and context["store"] is None:
        abort(404)
    return render_template("hub/shop/checkout.html", form={}, errors={}, **context)


@bp.post("/commande")
def place_order() -> ResponseReturnValue:
    """Place the order; the confirmation is the order's own page (pickup QR when ready)."""
    cart = _session_cart()
    if cart is None:
        flash(_("Your cart is empty."), "error")
        return redirect(url_for("webshop.cart"))
    form = {k: request.form.get(k, "").strip()[:300] for k in ("magasin", "name", "email")}
    context = _checkout_context(cart, form["magasin"] or None)
    errors: dict[str, str] = {}
    if context["store"] is None:
        errors["magasin"] = _("Choose the store where you will collect your order.")
    if not form["name"] or len(form["name"]) > 80:
        errors["name"] = _("Give your name (up to 80 characters).")
    email = form["email"]
    if len(email) > 254 or email.count("@") != 1 or not all(email.split("@")) or " " in email:
        errors["email"] = _("Give a valid e-mail address: we send the pickup code there.")
    shown = request.form.get("total", "")
    expected = int(shown) if shown.isascii() and shown.isdigit() and len(shown) < 12 else None
    if not errors:
        private_key = keys.current_private_key(current_app.config["DATA_DIR"])
        try:
            made = carts.checkout(
                get_db(),
                cart["id"],
                context["store"]["id"],
                form["name"],
                email,
                private_key=private_key,
                expected_total=expected,
            )
        except carts.CartError as exc:
            if exc.code != "price_changed":
                flash(_cart_message(exc), "error")
                return redirect(url_for("webshop.cart"))
            errors["price"] = _(
                "The price changed while you were ordering (a promotion ended or began). "
                "Check the new total, then order again."
            )
            context = _checkout_context(cart, context["store"]["id"])
        except OrderError as exc:
            if exc.code == "out_of_stock":
                errors["stock"] = _(
                    "Some items are no longer in stock in this store: choose another store "
                    "or change your cart."
                )
                context = _checkout_context(cart, context["store"]["id"])
            else:
                errors["form"] = _("Check your details and try again.")
        else:
            order = made["order"]
            mine = [o for o in session.get("orders", []) if o[0] != order["number"]]
            session["orders"] = [*mine, [order["number"], made["access_key"]]][-MY_ORDERS_MAX:]
            session.pop("cart", None)
            session.pop("import", None)
            return redirect(made["shop_path"])
    return render_template("hub/shop/checkout.html", form=form, errors=errors, **context), 400


@bp.get("/mes-commandes")
def my_orders() -> ResponseReturnValue:
    """The orders placed from this browser, newest first, with their status and messages."""
    db = get_db()
    orders = []
    for number, key in reversed(session.get("orders", [])):
        order = get_order_by_number(db, str(number)[:20])
        if order is None or not check_access_key(db, order["id"], str(key)):
            continue
        n_messages = db.execute(
            "SELECT count(*) FROM notifications WHERE order_id = ?", [order["id"]]
        ).fetchone()[0]
        store = db.execute("SELECT name FROM stores WHERE id = ?", [order["store_id"]]).fetchone()
        fr, en = STATUS_LABELS.get(order["status"], (order["status"], order["status"]))
        orders.append(
            {
                "number": order["number"],
                "status": order["status"],
                "status_label": en if current_lang() == "en" else fr,
                "placed_at": order["placed_at"],
                "store": store[0] if store else "",
                "messages": n_messages,
                "url": f"/orders/{order['number']}?k={key}",
            }
        )
    return render_template("hub/shop/my_orders.html", orders=orders)
