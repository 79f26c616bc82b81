"""« Ma carte » in the web shop (``/shop/compte/carte``): the signed-in customer's QR code.

The page shows the QR code of a fresh ``card`` token (app/hub/domain/cards.py) and
redraws it every minute (htmx polling of the ``_card_qr`` partial, no inline script);
the PNG is minted on each request and never cached. A button replaces the card id
itself (after a lost phone, say). Signed-in customers only.
"""

from __future__ import annotations

import hashlib
import io
import secrets

from flask import Response, abort, current_app, redirect, render_template, session, url_for
from flask.typing import ResponseReturnValue

from app.core.qr import render_qr
from app.hub import database as hdb
from app.hub.domain import cards
from app.hub.storage import get_db
from app.hub.views import webshop
from app.web.htmx import render_page_or_partial

bp = webshop.blueprint("hub_card", __name__)

REFRESH_S = 60  # the page asks for a new code this often
# The accounts work (app/hub/views/account.py) keeps the customer's session token under
# this key; its row in ``customer_sessions`` is the token's SHA-256. Read here directly
# until that helper is on the branch: swap current_customer_id() for it then.
CUSTOMER_SESSION_KEY = "customer"
SIGN_IN_ENDPOINT = "account.sign_in"


def current_customer_id() -> str | None:
    """The signed-in customer's id: the session's token names a live session row."""
    token = session.get(CUSTOMER_SESSION_KEY)
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    return hdb.scalar(
        get_db(),
        "SELECT customer_id FROM customer_sessions WHERE id = ? AND revoked_at IS NULL",
        [hashlib.sha256(token.encode()).hexdigest()],
    )


def _sign_in_page() -> ResponseReturnValue:
    """Not signed in: to the sign-in page (once the accounts work is registered), else
    a page saying so (401); nothing about any card either way."""
    if SIGN_IN_ENDPOINT in current_app.view_functions:
        return redirect(url_for(SIGN_IN_ENDPOINT))
    return render_template("hub/shop/card_signin.html"), 401


@bp.get("/compte/carte")
def card_page() -> ResponseReturnValue:
    """The card page; htmx polls the ``#card-qr`` partial every minute."""
    if current_customer_id() is None:
        return _sign_in_page()
    return render_page_or_partial(
        "hub/shop/card.html",
        "hub/shop/_card_qr.html",
        refresh_s=REFRESH_S,
        version=secrets.token_hex(4),
    )


@bp.get("/compte/carte/qr.png")
def card_qr() -> ResponseReturnValue:
    """The QR code of a freshly minted card token, never stored by the browser."""
    customer_id = current_customer_id()
    if customer_id is None:
        abort(401)
    token = cards.card_token(get_db(), current_app.config["DATA_DIR"], customer_id)
    buf = io.BytesIO()
    render_qr(token, box_size=8).save(buf, "PNG")
    response = Response(buf.getvalue(), mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/compte/carte/nouvelle")
def rotate() -> ResponseReturnValue:
    """Replace the card id: codes already shown stop naming this customer at the hub."""
    customer_id = current_customer_id()
    if customer_id is None:
        return _sign_in_page()
    cards.rotate_card(get_db(), customer_id)
    return redirect(url_for("hub_card.card_page", nouvelle=1), code=303)
