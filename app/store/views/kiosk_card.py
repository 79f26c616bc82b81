"""« Ma carte » scanned at the kiosk: the shopper is recognised until the idle reset.

The kiosk's ``/scan`` (the handheld scanner's burst, the camera) sends a code that
claims to be a card here (kiosk.scan), by POST only: a card token never goes in a URL.
It is verified offline (app/store/domain/customer_cards.py); the session then holds the
card id, and nothing else, until the idle reset clears the session
(kiosk.reset_session). Every page's
header greets the shopper (templates/kiosk/_recognised.html): by first name only when
this store holds one for the card, with « Ne plus me proposer de suggestions »: one tap
withdraws consent to personal suggestions (queued for the hub, offline too:
app/store/domain/consent.py) and the kiosk shows nothing personal from then on.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l

from app.store.domain import card_lookup, consent, customer_cards
from app.store.storage import get_db
from app.store.sync import card_fetch
from app.store.views.scanned_cart import STAFF_LOGIN_KEYS, staff_tablet
from app.web.htmx import redirect_page
from app.web.security import safe_next

bp = Blueprint("kiosk_card", __name__)

SESSION_KEY = "card"  # the recognised shopper's card id, nothing more
REVOKED_KEY = "card_no_personal"  # withdrawn here during this visit (a flag, no data)

MESSAGES = {
    "expired": _l(
        'This card\'s code has expired. Open "My card" on your phone again: a new code will show.'
    ),
    "refused": _l(
        'This card could not be read. Open "My card" on your phone again and show its new code.'
    ),
    "in_url": _l(
        "For your privacy, a card is never read from a web address: "
        'show "My card" to the kiosk\'s scanner or camera.'
    ),
}


def refused_in_url() -> Any:
    """A card token in a GET address (a link, the history, an old bookmark): refused,
    never recognised. The kiosk sends a scanned card by POST only (static/js/kiosk.js),
    so its token never lands in a URL, the browser's history or an access log."""
    session.pop(SESSION_KEY, None)
    return render_template(
        "kiosk/card_problem.html", message=MESSAGES["in_url"], reason="in_url"
    ), 400


def recognise(code: str) -> Any:
    """Verify a scanned card and remember its id in the session; back where the shopper
    was (never the scan address itself), or a kind word on why it was refused. Another
    card than the one recognised starts a fresh visit (:func:`fresh_visit`)."""
    check = customer_cards.verify_card(get_db(), code)
    if not check.ok:
        # Whoever scanned this is maybe not the shopper recognised before: forget them.
        session.pop(SESSION_KEY, None)
        key = "expired" if check.reason in ("expired", "not_yet_valid") else "refused"
        return render_template(
            "kiosk/card_problem.html", message=MESSAGES[key], reason=check.reason
        ), 400
    previous = session.get(SESSION_KEY)
    if previous and previous != check.card_id:
        fresh_visit()  # another shopper: nothing of the one before stays
    session[SESSION_KEY] = check.card_id
    # A card this store does not hold (a walk-in shopper): asked of the hub, briefly,
    # when it is reachable; on any failure they stay recognised anonymously.
    db = get_db()
    card_lookup.learn(
        db, check.card_id, card_fetch.asker(db, current_app.extensions.get("hub_client"))
    )
    back = safe_next(request.referrer, url_for("kiosk.browse"), host=request.host)
    if back.split("?")[0] in ("/", url_for("kiosk.scan")):
        back = url_for("kiosk.browse")
    return redirect(back)


# What a new shopper keeps of the screen as they find it: its language and accessible
# mode, the form's CSRF token, and on a staff tablet the staff login.
SCREEN_KEYS = ("lang", "a11y", "csrf_token")


def fresh_visit() -> None:
    """Another card scanned while a shopper was recognised: a new visit begins, as after
    the idle reset (kiosk.reset_session), without the previous shopper's cart, tickets,
    carts sent, withdrawal flag or anything else of theirs; only the screen's settings stay."""
    kept_keys = SCREEN_KEYS + (STAFF_LOGIN_KEYS if staff_tablet() else ())
    kept = {k: session[k] for k in kept_keys if k in session}
    session.clear()
    session.update(kept)


def recognised_globals() -> dict[str, Any]:
    """For every page's header: whether a shopper is recognised, and their first name
    if this store holds one (an app context processor, listed in app/store/app.py)."""
    card_id = (
        session.get(SESSION_KEY) if request.blueprint in ("kiosk", "cart", "promotions") else None
    )
    if not isinstance(card_id, str) or not card_id:
        return {
            "recognised": False,
            "recognised_name": None,
            "recognised_points": None,
            "recognised_personal_off": False,
        }
    db = get_db()
    return {
        "recognised": True,
        "recognised_name": customer_cards.first_name(db, card_id),
        "recognised_points": customer_cards.points(db, card_id),
        # Withdrawn during this visit, or earlier at this store: no button, a word instead.
        "recognised_personal_off": bool(session.get(REVOKED_KEY))
        or consent.revoked_here(db, card_id),
    }


def personal_allowed() -> bool:
    """Whether the kiosk may show the recognised shopper anything personal: every
    personal feature of the kiosk asks this first (app/store/domain/consent.py)."""
    card_id = session.get(SESSION_KEY)
    if not isinstance(card_id, str) or session.get(REVOKED_KEY):
        return False
    return consent.personal_allowed(get_db(), card_id)


@bp.post("/carte/suggestions/non")
def revoke_personal() -> Any:
    """« Ne plus me proposer de suggestions »: queue the withdrawal for the hub (the card
    id only) and show nothing personal from now on; back where the shopper was."""
    card_id = session.get(SESSION_KEY)
    back = safe_next(request.referrer, url_for("kiosk.browse"), host=request.host)
    if not isinstance(card_id, str) or not card_id:
        return redirect_page(back)  # nobody recognised (the idle reset came first)
    consent.revoke(get_db(), card_id)
    session[REVOKED_KEY] = True
    return redirect_page(back)
