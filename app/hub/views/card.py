"""« Ma carte » in the web shop (``/shop/compte/carte``): the signed-in customer's QR code.

The page shows the QR code of a fresh ``card`` token (app/hub/domain/cards.py) and
redraws it every minute (htmx polling of the ``_card_qr`` partial, no inline script);
the PNG is minted on each request and never cached. A button replaces the card id
itself (after a lost phone, say). Signed-in customers only.
"""

from __future__ import annotations

import io
import secrets

from flask import Response, abort, current_app, redirect, url_for
from flask.typing import ResponseReturnValue

from app.core.qr import render_qr
from app.hub.domain import cards
from app.hub.storage import get_db
from app.hub.views import account, webshop
from app.web.htmx import redirect_page, render_page_or_partial

bp = webshop.blueprint("hub_card", __name__)

REFRESH_S = 60  # the page asks for a new code this often
SIGN_IN_ENDPOINT = "account.sign_in"


def current_customer_id() -> str | None:
    """The signed-in customer's id (app/hub/views/account.py's live session), or None."""
    customer = account.signed_in()
    return customer["id"] if customer else None


def _sign_in_page() -> ResponseReturnValue:
    """Not signed in: to the sign-in page (the whole page, for htmx's poll too), nothing
    about any card."""
    return redirect_page(url_for(SIGN_IN_ENDPOINT))


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
    cards.renew_card(get_db(), account.pii_ring(), customer_id)  # stores told, same transaction
    return redirect(url_for("hub_card.card_page", nouvelle=1), code=303)
