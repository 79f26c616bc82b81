"""The web shop's click-and-collect (``/shop/commande``): choose a store (its stock for
every line), give a name and e-mail, place the order; and the orders placed from this
browser (``/shop/mes-commandes``).

A chain has a thousand stores: the chooser shows ten at a time (``?page=``), those that
can serve the whole cart first, searchable by city or name (``?magasins=``); the store
chosen (``?magasin=<id>``) is read on its own.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext

from app.hub import database as hdb
from app.hub.domain import cart_prices, carts, keys, ratelimit, shop_stores, store_credit
from app.hub.domain import orders as hub_orders
from app.hub.domain.listing import page_number, search_words
from app.hub.domain.order_rows import get_order_by_number
from app.hub.domain.orders import OrderError, check_access_key
from app.hub.storage import get_db
from app.hub.views import account
from app.hub.views.shop import STATUS_LABELS
from app.hub.views.webshop import blueprint, cart_message, session_cart
from app.web.i18n import current_lang

bp = blueprint("webshop_checkout", __name__)

MY_ORDERS_MAX = 20  # the session cookie holds at most this many (number, key) pairs
CODE_TRIES = 10  # typed store-credit codes per client and window
CODE_WINDOW_S = 600.0


def _credit_message(exc: store_credit.CreditError) -> str:
    """What the shopper reads when a code is refused (never whose a code is)."""
    if exc.code == "spent":
        return _(
            "The store credit %(code)s has already been used: nothing is left on it.",
            code=exc.credit,
        )
    if exc.code == "not_yours":
        return _(
            "The store credit %(code)s belongs to another customer account: sign in to "
            "the account it was given to.",
            code=exc.credit,
        )
    if exc.code == "nothing_due":
        return _("Your order is already covered: remove the code %(code)s.", code=exc.credit)
    if exc.code == "unknown":
        return _("No store credit has the code %(code)s: check it.", code=exc.credit)
    return _("A store credit code looks like AV-7KQ2-M9XD: check it.")


def _wanted_codes(customer: dict[str, Any] | None) -> tuple[list[str], str]:
    """The codes ticked (the signed-in customer's own) and the one typed, as sent."""
    ticked = [c[:20] for c in request.form.getlist("credit")[: store_credit.MAX_CODES]]
    if customer is None:
        ticked = []
    return ticked, request.form.get("credit_code", "").strip()[:40]


def _checkout_context(cart: dict[str, Any], store_id: str | None) -> dict[str, Any]:
    db = get_db()
    lines = carts.cart_lines(db, cart["id"])
    priced = cart_prices.priced_lines(db, lines)
    need = {ln["sku"]: ln["qty"] for ln in priced["lines"]}
    where = request.args.get("magasins", "")[:100]
    stores = shop_stores.chooser(
        db, need, search_words(where), page_number(request.args.get("page"))
    )
    store = shop_stores.store(db, store_id) if store_id else None
    short = 0
    if store is not None:
        levels = carts.store_levels(db, store["id"], [ln["sku"] for ln in priced["lines"]])
        for ln in priced["lines"]:
            ln["here"] = levels.get(ln["sku"], 0)
            short += ln["here"] < ln["qty"]
    # What the chooser's links keep: the search and the page.
    keep = {"magasins": where} if where else {}
    if stores.number > 1:
        keep["page"] = stores.number
    return {
        "cart": cart,
        "priced": priced,
        "stores": stores.items,
        "chooser": stores,
        "where": where,
        "keep": keep,
        "store": store,
        "n_lines": len(priced["lines"]),
        "short": short,
        "credits": _credits_of(db),
    }


def _credits_of(db: Any) -> list[dict[str, Any]]:
    """The signed-in customer's unspent store credit ([] for a guest)."""
    customer = account.signed_in()
    return store_credit.unspent(db, customer["id"]) if customer is not None else []


@bp.get("/commande")
def checkout() -> ResponseReturnValue:
    """Click-and-collect: choose a store (its stock for every line), then your details."""
    cart = session_cart()
    if cart is None or not carts.cart_lines(get_db(), cart["id"]):
        flash(_("Your cart is empty."), "error")
        return redirect(url_for("webshop_cart.cart"))
    store_id = request.args.get("magasin", "")[:20] or None
    context = _checkout_context(cart, store_id)
    if store_id and context["store"] is None:
        abort(404)
    return render_template("hub/shop/checkout.html", form={}, errors={}, ticked=[], **context)


@bp.post("/commande")
def place_order() -> ResponseReturnValue:
    """Place the order; the confirmation is the order's own page (pickup QR when ready)."""
    cart = session_cart()
    if cart is None:
        flash(_("Your cart is empty."), "error")
        return redirect(url_for("webshop_cart.cart"))
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
    customer = account.signed_in()
    ticked, typed = _wanted_codes(customer)
    form["credit_code"] = typed
    codes = [*ticked, typed] if typed else ticked
    status = 400
    if typed:
        allowed, retry = ratelimit.hit(
            get_db(), f"credit_code:{request.remote_addr or ''}", CODE_TRIES, CODE_WINDOW_S
        )
        if not allowed:
            minutes = max(1, -(-retry // 60))
            errors["credit"] = ngettext(
                "Too many store credit codes tried: wait %(num)d minute, then try again.",
                "Too many store credit codes tried: wait %(num)d minutes, then try again.",
                minutes,
            )
            status = 429
    if not errors and codes:
        for code in codes:  # a first look, for a clear message before anything is written
            try:
                store_credit.check(get_db(), code, customer["id"] if customer else None)
            except store_credit.CreditError as exc:
                errors["credit"] = _credit_message(exc)
                status = 409 if exc.code == "spent" else 400
                break
    if not errors:
        private_key = keys.current_private_key(current_app.config["DATA_DIR"])
        db = get_db()
        try:
            # The order and the codes it uses: one transaction (a refused code undoes
            # the order; the write lock makes two tabs with one code one order).
            with hdb.write(db):
                made = carts.checkout(
                    db,
                    cart["id"],
                    context["store"]["id"],
                    form["name"],
                    email,
                    private_key=private_key,
                    expected_total=expected,
                )
                if codes:
                    order_id = made["order"]["id"]
                    store_credit.apply(db, order_id, codes, customer["id"] if customer else None)
                    hub_orders.publish(db, order_id)  # the store learns the credit
        except store_credit.CreditError as exc:
            errors["credit"] = _credit_message(exc)
            status = 409 if exc.code == "spent" else 400
            context = _checkout_context(cart, context["store"]["id"])
        except carts.CartError as exc:
            if exc.code != "price_changed":
                flash(cart_message(exc), "error")
                return redirect(url_for("webshop_cart.cart"))
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
            account.order_placed(order["id"])  # signed in: the order joins the account
            mine = [o for o in session.get("orders", []) if o[0] != order["number"]]
            session["orders"] = [*mine, [order["number"], made["access_key"]]][-MY_ORDERS_MAX:]
            session.pop("cart", None)
            session.pop("import", None)
            return redirect(made["shop_path"])
    page = render_template(
        "hub/shop/checkout.html", form=form, errors=errors, ticked=ticked, **context
    )
    return page, status


@bp.get("/mes-commandes")
def my_orders() -> ResponseReturnValue:
    """The orders placed from this browser, newest first, with their status and messages."""
    db = get_db()
    orders = []
    for number, key in reversed(session.get("orders", [])):
        order = get_order_by_number(db, str(number)[:20])
        if order is None or not check_access_key(db, order["id"], str(key)):
            continue
        n_messages = hdb.scalar(
            db, "SELECT count(*) FROM notifications WHERE order_id = ?", [order["id"]]
        )
        store = hdb.scalar(db, "SELECT name FROM stores WHERE id = ?", [order["store_id"]])
        fr, en = STATUS_LABELS.get(order["status"], (order["status"], order["status"]))
        orders.append(
            {
                "number": order["number"],
                "status": order["status"],
                "status_label": en if current_lang() == "en" else fr,
                "placed_at": order["placed_at"],
                "store": store or "",
                "messages": n_messages,
                "url": f"/orders/{order['number']}?k={key}",
            }
        )
    return render_template("hub/shop/my_orders.html", orders=orders)
