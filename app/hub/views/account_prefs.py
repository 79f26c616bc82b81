"""« Mon compte »: consent to personal suggestions and loyalty points (issue 14).

Consent (RGPD): an explicit opt-in, unticked by default, said in plain words, given or
withdrawn in one tap, journaled (app/hub/domain/consent.py). Loyalty: the balance, head
office's rule, and a button turning whole blocks of points into a store-credit code
(app/hub/domain/loyalty.py). The account page includes
templates/hub/shop/_account_prefs.html, which reads :func:`account_prefs` (a template
global: the signed-in customer's figures, read only when the page asks).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from app.hub.domain import consent, customer_feed, loyalty
from app.hub.storage import get_db
from app.hub.views.account import pii_ring, signed_in
from app.hub.views.webshop import blueprint

bp = blueprint("account_prefs", __name__)

HISTORY_SHOWN = 10  # the latest consent changes listed (all are in « Mes données »)


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    return {"account_prefs": account_prefs}


def account_prefs() -> dict[str, Any] | None:
    """What the account page shows of consent and loyalty, or None if signed out."""
    customer = signed_in()
    if customer is None:
        return None
    db = get_db()
    rule = loyalty.rules(db)
    points = loyalty.balance(db, customer["id"])
    spend, cents = loyalty.convertible(points, rule)
    return {
        "consent": consent.personal_allowed(db, customer["id"]),
        "consent_at": customer.get("consent_at"),
        "points": points,
        "rule": rule,
        "convert_points": spend,
        "convert_cents": cents,
        "credits": loyalty.credits(db, customer["id"]),
        "history": consent.history(db, customer["id"])[:HISTORY_SHOWN],
    }


@bp.post("/compte/suggestions")
def set_consent() -> ResponseReturnValue:
    """Give consent (the box ticked) or withdraw it (the one-tap button)."""
    customer = signed_in()
    if customer is None:
        return redirect(url_for("account.sign_in"))
    give = request.form.get("consent") == "yes" and request.form.get("action") == "give"
    if request.form.get("action") == "give" and not give:
        flash(_("Tick the box to agree to personal suggestions."), "error")
        return redirect(url_for("account.account") + "#suggestions")
    # The stores holding their card learn it in the same transaction: suggestions
    # sent, or forgotten (a key error changes nothing: app/hub/views/account.py's page).
    if customer_feed.set_consent(get_db(), pii_ring(), customer["id"], give, "web"):
        current_app.logger.info(
            "customer %s %s consent to personal suggestions",
            customer["id"],
            "gave" if give else "withdrew",
        )
    if give:
        flash(_("Thank you: personal suggestions are on."), "ok")
    else:
        flash(_("Done: no more personal suggestions, online or in store."), "ok")
    return redirect(url_for("account.account") + "#suggestions")


@bp.post("/compte/points/avoir")
def convert_points() -> ResponseReturnValue:
    """Turn whole blocks of points into one store-credit code."""
    customer = signed_in()
    if customer is None:
        return redirect(url_for("account.sign_in"))
    try:
        done = loyalty.convert(get_db(), customer["id"])
    except loyalty.LoyaltyError:
        flash(_("Not enough points yet for store credit."), "error")
        return redirect(url_for("account.account") + "#loyalty")
    current_app.logger.info("customer %s turned %d points into credit", customer["id"], done.points)
    customer_feed.card_changed(get_db(), pii_ring(), customer["id"])  # the kiosk's balance
    flash(_("Your store credit code: %(code)s", code=done.credit_code), "ok")
    return redirect(url_for("account.account") + "#loyalty")
