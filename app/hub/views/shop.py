"""The demo web shop's order pages: what the shopper sees on a phone.

``/orders/<number>?k=<access key>``: the order, its status, the messages the hub sent
("Votre commande est prête", with the pickup code) and the pickup QR code. The access
key is an HMAC of the order id with a hub secret (:func:`.orders.access_key`): the
number alone, printed on a bag label, opens nothing. A wrong key is a plain 404, the
same as an unknown number, so numbers cannot be probed.
"""

from __future__ import annotations

import io

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from app.core.qr import render_qr
from app.hub import database as hdb
from app.hub.domain import notifications
from app.hub.domain.order_rows import get_order_by_number, order_lines
from app.hub.domain.orders import check_access_key
from app.hub.storage import get_db
from app.hub.views import webshop
from app.web.i18n import LANGUAGES, current_lang, local_moment

bp = Blueprint("hub_shop", __name__)

STATUS_LABELS = {
    "placed": ("En préparation", "Being prepared"),
    "preparing": ("En préparation", "Being prepared"),
    "ready": ("Prête à retirer", "Ready for pickup"),
    "ready_partial": ("Prête à retirer (partielle)", "Ready for pickup (partial)"),
    "partially_collected": ("Retirée en partie", "Partly collected"),
    "collected": ("Retirée", "Collected"),
    "expired": ("Expirée\u00a0: non retirée à temps", "Expired: not collected in time"),
    "cancelled": ("Annulée", "Cancelled"),
}
SHOW_CODE = ("ready", "ready_partial", "partially_collected")


def _order_or_404(number: str) -> dict:
    """The order behind ``number`` if ``?k=`` is its access key; a 404 otherwise."""
    db = get_db()
    order = get_order_by_number(db, number) if len(number) <= 20 else None
    if order is None or not check_access_key(db, order["id"], request.args.get("k", "")):
        abort(404)
    return order


@bp.get("/orders/<number>")
def order_page(number: str) -> ResponseReturnValue:
    """The shopper's page for one order, in the shop's language: the pickup QR and code
    first, then the store, the lines and the messages."""
    order = _order_or_404(number)
    db = get_db()
    lang = current_lang()
    store = hdb.one(db, "SELECT name, city, address FROM stores WHERE id = ?", [order["store_id"]])
    lines = order_lines(db, order["id"])
    fr, en = STATUS_LABELS.get(order["status"], (order["status"], order["status"]))
    html = render_template(
        "hub/order.html",
        order=order,
        lines=lines,
        item_count=sum(ln["qty"] for ln in lines),
        # What the shopper pays: each line's base total less the discount it was shown.
        total_cents=sum(ln["qty"] * ln["price_cents"] - ln["discount_cents"] for ln in lines),
        discount_cents=sum(ln["discount_cents"] for ln in lines),
        store=store or {},
        messages=[_message_in(m, lang) for m in notifications.for_order(db, order["id"])],
        status_label=en if lang == "en" else fr,
        show_code=order["status"] in SHOW_CODE,
        key=request.args.get("k", ""),
        # The shop's header (language switch, cart badge): this page is not under /shop/.
        lang=lang,
        cart_count=webshop.cart_count(),
        LANGUAGES=LANGUAGES,
    )
    response = Response(html, mimetype="text/html")
    response.vary.add("Cookie")  # the language is the session's
    return response


def message_titles() -> dict[str, str]:
    """A message's title per kind, in the shopper's language (the stored subject is French)."""
    return {
        "placed": _("Order received"),
        "ready": _("Your order is ready"),
        "reminder": _("Reminder: your order is waiting for you"),
        "expired": _("Order not collected in time"),
        "returned": _("Return recorded"),
    }


def _message_in(message: dict, lang: str) -> dict:
    """A recorded message (French, then ``---`` and English) in one language."""
    french, _sep, english = message["body"].partition("\n---\n")
    text = english.strip() if lang == "en" and english.strip() else french.strip()
    title = message_titles().get(message["kind"], message["subject"])
    return {**message, "title": title, "text": text}


@bp.get("/orders/<number>/qr.png")
def order_qr(number: str) -> ResponseReturnValue:
    """The pickup QR code (the hub-signed ``pickup`` token) as a PNG."""
    order = _order_or_404(number)
    if order["status"] not in SHOW_CODE:
        abort(404)
    buf = io.BytesIO()
    render_qr(order["pickup_token"], box_size=8).save(buf, "PNG")
    return Response(buf.getvalue(), mimetype="image/png")


def euros(cents: int) -> str:
    """``123450`` -> ``1 234,50 €`` (French format, narrow no-break spaces).

    The ``euros`` template filter of every hub page (app/hub/app.py's TEMPLATE_FILTERS).
    """
    whole, frac = divmod(int(cents), 100)
    return f"{whole:,}".replace(",", "\u202f") + f",{frac:02d}\u00a0€"


def fr_datetime(text: str | None) -> str:
    """``2026-11-22T14:02:00Z`` -> ``22/11/2026 15:02``: the shopper reads the shop's time.

    The ``fr_datetime`` template filter (app/hub/app.py's TEMPLATE_FILTERS).
    """
    moment = local_moment(text)  # in app.config["STORE_TIMEZONE"], as on every page
    return moment.strftime("%d/%m/%Y %H:%M") if moment else ""
