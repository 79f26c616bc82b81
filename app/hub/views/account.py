"""The web shop's customer account (``/shop/compte``): sign in with a one-time code
sent by e-mail, no password; "Mon compte" lists the customer's orders from every
channel; sign out.

The rules are in app/hub/domain/customers.py. The signed session cookie holds only
random ids: the pending code's row id (``login_code``) while the code is awaited, then
the session token (``customer``), checked against the hub's ``customer_sessions`` on
every request. Nothing logged names an e-mail or a code: a customer id at most.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext

from app.hub.domain import customer_sessions, customers
from app.hub.domain.orders import shop_path
from app.hub.domain.pii import KeyRing, keys_path
from app.hub.storage import get_db
from app.hub.views.shop import STATUS_LABELS
from app.hub.views.webshop import blueprint
from app.web.i18n import current_lang

bp = blueprint("account", __name__)

CODE_KEY = "login_code"  # the session key of the pending code's row id
SESSION_KEY = "customer"  # the session key of the customer session's token


def _ring() -> KeyRing:
    """The hub's personal-data key ring, read again when its file changes (after a
    ``kiosk hub pii rotate``, values sealed under the new key must still open here)."""
    data_dir = current_app.config["DATA_DIR"]
    path = keys_path(data_dir)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None  # not made yet: KeyRing.open makes it
    cached = current_app.extensions.get("pii_ring")
    if cached is None or cached[0] != stamp or stamp is None:
        ring = KeyRing.open(data_dir)
        cached = (path.stat().st_mtime_ns, ring)
        current_app.extensions["pii_ring"] = cached
    return cached[1]


def signed_in() -> dict[str, Any] | None:
    """The customer this browser's session opens, or None (and the stale id dropped)."""
    token = session.get(SESSION_KEY)
    if token is None:
        return None
    customer = customer_sessions.session_customer(get_db(), token)
    if customer is None:
        session.pop(SESSION_KEY, None)
    return customer


def order_placed(order_id: str) -> None:
    """A web-shop order placed while signed in joins the account (the checkout calls it)."""
    customer = signed_in()
    if customer is not None:
        customers.claim_order(get_db(), customer["id"], order_id)


def _refusal(exc: customers.CustomerError) -> str:
    if exc.code == "bad_email":
        return _("Give a valid e-mail address: we send your sign-in code there.")
    if exc.code == "rate_limited":
        minutes = max(1, (exc.retry_after + 59) // 60)
        return ngettext(
            "Too many codes asked: try again in %(num)d minute.",
            "Too many codes asked: try again in %(num)d minutes.",
            minutes,
        )
    if exc.code == "wrong_code":
        return ngettext(
            "This is not the code we sent. %(num)d attempt left.",
            "This is not the code we sent. %(num)d attempts left.",
            exc.left,
        )
    return {
        "expired": _("This code has expired (it is valid 10 minutes): ask for a new one."),
        "used": _("This code was already used or replaced by a newer one: ask for a new one."),
        "too_many_attempts": _("Too many wrong attempts for this code: ask for a new one."),
    }.get(exc.code, _("Ask for a sign-in code first."))


@bp.get("/compte/connexion")
def sign_in() -> ResponseReturnValue:
    """Step 1: the e-mail address the code is sent to."""
    if signed_in() is not None:
        return redirect(url_for("account.account"))
    return render_template("hub/shop/account_signin.html", email="", error=None)


@bp.post("/compte/connexion")
def send_code() -> ResponseReturnValue:
    """Record the code's e-mail (the mailer sends it) and ask for the code."""
    email = request.form.get("email", "")[:300]
    try:
        code_id = customers.request_code(get_db(), _ring(), email, request.remote_addr or "")
    except customers.CustomerError as exc:
        status = 429 if exc.code == "rate_limited" else 400
        headers = {"Retry-After": str(exc.retry_after)} if status == 429 else {}
        html = render_template(
            "hub/shop/account_signin.html", email=email[:254], error=_refusal(exc)
        )
        return html, status, headers
    session[CODE_KEY] = code_id
    return redirect(url_for("account.code"))


@bp.get("/compte/code")
def code() -> ResponseReturnValue:
    """Step 2: the code from the e-mail."""
    if not session.get(CODE_KEY):
        return redirect(url_for("account.sign_in"))
    return render_template("hub/shop/account_code.html", error=None, retry=False)


@bp.post("/compte/code")
def check_code() -> ResponseReturnValue:
    """Sign in if the code is right; say why not otherwise."""
    code_id = session.get(CODE_KEY)
    try:
        done = customers.verify_code(get_db(), _ring(), code_id, request.form.get("code", ""))
    except customers.CustomerError as exc:
        retry = exc.code != "wrong_code"
        if retry:  # this code is dead: the next step is a new one
            session.pop(CODE_KEY, None)
        html = render_template("hub/shop/account_code.html", error=_refusal(exc), retry=retry)
        return html, 400
    session.pop(CODE_KEY, None)
    session[SESSION_KEY] = done.session_token
    current_app.logger.info(
        "customer %s signed in (%s, %d guest orders attached)",
        done.customer_id,
        "new account" if done.created else "existing account",
        done.attached,
    )
    flash(_("You are signed in."), "ok")
    return redirect(url_for("account.account"))


@bp.get("/compte")
def account() -> ResponseReturnValue:
    """Mon compte: the customer's orders from every channel, newest first."""
    customer = signed_in()
    if customer is None:
        return redirect(url_for("account.sign_in"))
    db = get_db()
    lang = current_lang()
    orders = []
    for order in customers.orders_of(db, customer["id"]):
        fr, en = STATUS_LABELS.get(order["status"], (order["status"], order["status"]))
        orders.append(
            {
                "number": order["number"],
                "status": order["status"],
                "status_label": en if lang == "en" else fr,
                "placed_at": order["placed_at"],
                "store": order["store_name"] or "",
                "url": shop_path(db, order),
            }
        )
    email = customers.customer_email(_ring(), customer)
    return render_template("hub/shop/account.html", orders=orders, email=email)


@bp.post("/compte/deconnexion")
def sign_out() -> ResponseReturnValue:
    """Revoke the session at the hub (a kept copy of the cookie opens nothing)."""
    customer_sessions.revoke_session(get_db(), session.pop(SESSION_KEY, None))
    session.pop(CODE_KEY, None)
    flash(_("You are signed out."), "ok")
    return redirect(url_for("account.sign_in"))
