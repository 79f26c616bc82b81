"""The web shop's customer account (``/shop/compte``): sign in with a one-time code
sent by e-mail, no password; "Mon compte" shows in one place the customer's orders,
kiosk reservations, returns, store credit and carts sent from a kiosk, each marked with
its channel (online, or in store: app/hub/domain/account_history.py); sign out.

The rules are in app/hub/domain/customers.py. The signed session cookie holds only
random ids: the pending code's row id (``login_code``) while the code is awaited, then
the session token (``customer``), checked against the hub's ``customer_sessions`` on
every request. Nothing logged names an e-mail or a code: a customer id at most.
"""

from __future__ import annotations

import json
from typing import Any

from flask import (
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext

from app.hub.domain import (
    customer_export,
    customer_feed,
    customer_sessions,
    customers,
    erasure,
    order_people,
)
from app.hub.domain.pii import KeyRing, PiiKeyError
from app.hub.storage import get_db
from app.hub.views import account_overview
from app.hub.views.shop import STATUS_LABELS
from app.hub.views.webshop import blueprint
from app.web.i18n import current_lang

bp = blueprint("account", __name__)

CODE_KEY = "login_code"  # the session key of the pending code's row id
SESSION_KEY = "customer"  # the session key of the customer session's token


def pii_ring() -> KeyRing:
    """The hub's personal-data key ring: order_people.ring_of's, the one cache of it in
    the process (read again when its file changes: after a ``kiosk hub pii rotate``,
    values sealed under the new key must still open here)."""
    return order_people.ring_of(get_db())


@bp.app_errorhandler(PiiKeyError)
def key_unreadable(exc: PiiKeyError) -> ResponseReturnValue:
    """The personal-data key cannot be opened (a missing or misplaced key file, a value
    under a key rotated away): what was asked was not done (its transaction rolled
    back). A person in the web shop gets a page saying so, a store or adapter JSON; never
    a 500. Logged without any personal data (the reason names a file or a key id)."""
    current_app.logger.error("personal-data key unreadable: %s", exc)
    if request.path.startswith("/shop/"):
        html = render_template("hub/shop/error.html", code=503, csrf=False, keys=True)
        return _no_store(current_app.make_response((html, 503)))
    message = "the hub cannot open its personal-data key; retry later"
    return jsonify(error="personal_data_key", message=message), 503


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
        customer_feed.order_joined(get_db(), pii_ring(), customer["id"], order_id)


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
        code_id = customers.request_code(get_db(), pii_ring(), email, request.remote_addr or "")
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
        done = customers.verify_code(get_db(), pii_ring(), code_id, request.form.get("code", ""))
    except customers.CustomerError as exc:
        retry = exc.code != "wrong_code"
        if retry:  # this code is dead: the next step is a new one
            session.pop(CODE_KEY, None)
        html = render_template("hub/shop/account_code.html", error=_refusal(exc), retry=retry)
        return html, 400
    if done.attached:  # guest orders joined: their stores learn whose they are
        customer_feed.orders_attached(get_db(), pii_ring(), done.customer_id)
    session.pop(CODE_KEY, None)
    session[SESSION_KEY] = done.session_token  # a new token each sign-in: nothing to fix
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
    """Mon compte in one place, whichever channel each came from: orders (online, at a
    kiosk), kiosk reservations, returns, store credit, carts sent from a kiosk."""
    customer = signed_in()
    if customer is None:
        return redirect(url_for("account.sign_in"))
    db = get_db()
    email = customers.customer_email(pii_ring(), customer)
    return render_template(
        "hub/shop/account.html", email=email, **account_overview.overview(db, customer["id"])
    )


def _fresh_session() -> None:
    """An empty session but for the shop's language, at sign-out and deletion: the next
    person at a shared device finds none of the last one's orders, cart or code."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


@bp.post("/compte/deconnexion")
def sign_out() -> ResponseReturnValue:
    """Revoke the session at the hub (a kept copy of the cookie opens nothing)."""
    customer_sessions.revoke_session(get_db(), session.get(SESSION_KEY))
    _fresh_session()
    flash(_("You are signed out."), "ok")
    return redirect(url_for("account.sign_in"))


# --- Mes données: the customer's rights (access, portability, rectification, erasure) --


def _no_store(response: Any) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return response


def _name_refusal(exc: customer_export.NameRefused) -> str:
    if exc.code == "too_long":
        return ngettext(
            "A name holds %(num)d character at most.",
            "A name holds %(num)d characters at most.",
            customer_export.MAX_NAME,
        )
    return _("A name cannot hold control characters nor any of < > { } \\.")


def _data_page(customer: dict[str, Any], error: str | None = None, form: Any = None) -> Any:
    held = customer_export.export(get_db(), pii_ring(), customer["id"]) or {}
    lang = current_lang()
    for order in held.get("orders", []):
        fr, en = STATUS_LABELS.get(order["status"], (order["status"], order["status"]))
        order["status_label"] = en if lang == "en" else fr
    return render_template("hub/shop/account_data.html", held=held, error=error, form=form)


@bp.get("/compte/donnees")
def my_data() -> ResponseReturnValue:
    """Mes données: everything the hub holds about me, to read, download, correct."""
    customer = signed_in()
    if customer is None:
        return redirect(url_for("account.sign_in"))
    return _no_store(current_app.make_response(_data_page(customer)))


@bp.get("/compte/donnees.json")
def my_data_json() -> ResponseReturnValue:
    """The same, as a JSON file to keep or take elsewhere (portability)."""
    customer = signed_in()
    if customer is None:
        return redirect(url_for("account.sign_in"))
    held = customer_export.export(get_db(), pii_ring(), customer["id"])
    if held is None:
        return redirect(url_for("account.sign_in"))
    body = json.dumps(held, ensure_ascii=False, indent=2, sort_keys=True)
    day = held["exported_at"][:10]
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="mes-donnees-{day}.json"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    current_app.logger.info("customer %s downloaded their data", customer["id"])
    return _no_store(response)


@bp.post("/compte/donnees/nom")
def correct_name() -> ResponseReturnValue:
    """Rectification: my first and last name, sealed again."""
    customer = signed_in()
    if customer is None:
        return redirect(url_for("account.sign_in"))
    first = request.form.get("first_name", "")[:1000]
    last = request.form.get("last_name", "")[:1000]
    try:
        customer_feed.correct_names(get_db(), pii_ring(), customer["id"], first, last)
    except customer_export.NameRefused as exc:
        form = {"first_name": first[:200], "last_name": last[:200], "field": exc.field}
        html = _data_page(customer, _name_refusal(exc), form)
        return _no_store(current_app.make_response((html, 400)))
    flash(_("Your name is corrected."), "ok")
    return redirect(url_for("account.my_data"), 303)


@bp.get("/compte/supprimer")
def delete_confirm() -> ResponseReturnValue:
    """The confirmation step before the account is deleted."""
    customer = signed_in()
    if customer is None:
        return redirect(url_for("account.sign_in"))
    html = render_template("hub/shop/account_data_delete.html", error=None)
    return _no_store(current_app.make_response(html))


@bp.post("/compte/supprimer")
def delete_account() -> ResponseReturnValue:
    """Erase the account (app/hub/domain/erasure.py) and sign out: the orders stay as
    accounting records, detached and anonymised; every store is told to forget."""
    customer = signed_in()
    if customer is None:
        return redirect(url_for("account.sign_in"))
    if request.form.get("confirm") != "yes":
        error = _("Tick the box to confirm: deleting your account cannot be undone.")
        html = render_template("hub/shop/account_data_delete.html", error=error)
        return _no_store(current_app.make_response((html, 400)))
    done = erasure.erase_customer(get_db(), pii_ring(), customer["id"])
    _fresh_session()
    current_app.logger.info(
        "customer %s erased at their request (%d orders anonymised)",
        customer["id"],
        (done or {}).get("orders_anonymised", 0),
    )
    if (done or {}).get("email_unreadable"):  # head office must look (its key file)
        current_app.logger.warning(
            "customer %s erased, but their e-mail did not open: guest orders kept in clear "
            "were not searched (the erasure may be partial; restore the key and check)",
            customer["id"],
        )
    flash(
        _("Your account is deleted. Your orders are kept for the accounts, without your name."),
        "ok",
    )
    return redirect(url_for("account.sign_in"), 303)
