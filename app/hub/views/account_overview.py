"""« Mon compte » in one place (issue 14): what the account page shows of the
customer's orders (online, at a kiosk), home deliveries asked for at a kiosk, kiosk
reservations, returns, store credit and carts sent from a kiosk, each marked with its
channel. Read through app/hub/domain/account_history.py; no routes here
(app/hub/views/account.py renders it).
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_babel import gettext as _

from app.hub.domain import account_history, customers, loyalty, store_credit
from app.hub.domain.orders import shop_path
from app.hub.views.shop import STATUS_LABELS
from app.web.i18n import current_lang


def _channel(store: str | None) -> str:
    """How something reached the account: online, or at a store's kiosk or counter."""
    return _("In store, %(store)s", store=store) if store else _("Online")


def _orders(db: Any, customer_id: str) -> list[dict[str, Any]]:
    """The account's orders (web and kiosk) and home deliveries asked for at a kiosk,
    newest first, each with its channel."""
    lang = current_lang()
    found = customers.orders_of(db, customer_id)
    kiosk = account_history.kiosk_orders(db, [o["id"] for o in found])
    orders = []
    for order in found:
        fr, en = STATUS_LABELS.get(order["status"], (order["status"], order["status"]))

        orders.append(
            {
                "number": order["number"],
                "status": order["status"],
                "status_label": en if lang == "en" else fr,
                "placed_at": order["placed_at"],
                "store": order["store_name"] or "",
                "channel": _channel(kiosk.get(order["id"])),
                "url": shop_path(db, order),
            }
        )
    labels = {
        "requested": _("Delivery requested"),
        "shipped": _("Shipped"),
        "delivered": _("Delivered"),
        "cancelled": _("Cancelled"),
    }
    for delivery in account_history.deliveries_of(db, customer_id):
        orders.append(
            {
                "number": delivery["number"],
                "status": delivery["status"],
                "status_label": labels.get(delivery["status"], delivery["status"]),
                "placed_at": delivery["created_at"],
                "store": _("Home delivery"),
                "channel": _channel(delivery["store"]),
                "url": None,
            }
        )
    orders.sort(key=lambda o: o["placed_at"], reverse=True)
    return orders


def _reservations(db: Any, customer_id: str) -> list[dict[str, Any]]:
    lang = current_lang()
    found = account_history.reservations_of(db, customer_id)
    for r in found:
        r["channel"] = _channel(r["store"])
        for item in r["items"]:
            item["name"] = item["name_en"] if lang == "en" else item["name_fr"]
    return found


def _store_credit(db: Any, customer_id: str, returns: list[dict[str, Any]]) -> dict[str, Any]:
    """Store credit in one place: the points balance, and every credit code (a return
    refunded as credit, points turned into credit), newest first."""
    codes = [
        {
            "code": r["credit_code"],
            "cents": r["value_cents"],
            "at": r["at"],
            "origin": _("Return of order %(number)s", number=r["number"]),
            "channel": _channel(r["store"]),
        }
        for r in returns
        if r["credit_code"]
    ]
    codes += [
        {
            "code": c["credit_code"],
            "cents": c["credit_cents"],
            "at": c["at"],
            "origin": _("Loyalty points"),
            "channel": _channel(None),
        }
        for c in loyalty.credits(db, customer_id)
    ]
    codes.sort(key=lambda c: c["at"], reverse=True)
    # What is left on each code, and when it was used up (app/hub/domain/store_credit.py).
    state = {c["code"]: c for c in store_credit.of_customer(db, customer_id)}
    for c in codes:
        known = state.get(c["code"])
        c["left_cents"] = known["left_cents"] if known else c["cents"]
        c["spent_at"] = known["spent_at"] if known else None
    return {"points": loyalty.balance(db, customer_id), "codes": codes}


def overview(db: Any, customer_id: str) -> dict[str, Any]:
    """The account page's history: ``orders``, ``reservations``, ``returns``, ``credit``
    and ``sent_carts``."""
    returns = account_history.returns_of(db, customer_id)
    for r in returns:
        r["channel"] = _channel(r["store"])
    sent = account_history.sent_carts_of(db, customer_id)
    for cart in sent:
        cart["url"] = url_for("webshop_cart.import_cart", l=cart["lines"])
        cart["channel"] = _channel(cart["store"])
    return {
        "orders": _orders(db, customer_id),
        "reservations": _reservations(db, customer_id),
        "returns": returns,
        "credit": _store_credit(db, customer_id, returns),
        "sent_carts": sent,
    }
