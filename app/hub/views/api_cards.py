"""A card scanned at a store that does not hold it: ``POST /api/v1/cards/lookup``
(signed; docs/protocol.md, "Card look-up"; app/hub/domain/card_lookups.py).

The body is ``{"card_id": "..."}`` (never in the URL: a card id is kept out of access
logs). A live card answers ``{"card": {...}}``, the data of a ``customer_card`` change;
an unknown or revoked card answers 404 ``unknown_card``, whichever it is. A store may
ask :data:`CARD_LOOKUPS_PER_MINUTE` times a minute, found or not.
"""

from __future__ import annotations

from flask import current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from app.core import jsonsafe
from app.hub.domain import card_lookups, ratelimit
from app.hub.storage import get_db
from app.hub.views.account import pii_ring
from app.hub.views.api import blueprint, error, signed

#: A kiosk asks when a shopper whose card this store does not hold scans it (a few an
#: hour at a busy store); 30 a minute is far above that and far below what guessing
#: 128-bit card ids would need.
CARD_LOOKUPS_PER_MINUTE = 30
MAX_BODY = 1024

bp = blueprint("api_cards", __name__)


@bp.post("/cards/lookup")
@signed
def lookup_card() -> ResponseReturnValue:
    """Who a scanned card is, for the store that scanned it; the store now holds it."""
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY:
        return error(413, "too_large", f"at most {MAX_BODY} bytes")
    try:
        body = jsonsafe.loads(raw)
    except ValueError:
        return error(400, "bad_request", "the body is not valid JSON")
    if not isinstance(body, dict) or set(body) != {"card_id"}:
        return error(400, "bad_request", 'expected {"card_id": "..."}')
    card_id = body["card_id"]
    if not card_lookups.valid_card_id(card_id):
        return error(400, "bad_request", "card_id must be 1 to 64 URL-safe characters")
    db = get_db()
    limit = int(current_app.config.get("CARD_LOOKUPS_PER_MINUTE", CARD_LOOKUPS_PER_MINUTE))
    # Counted before the look-up, found or not: the limit is what stops id probing.
    allowed, retry_after = ratelimit.hit(db, f"card_lookup:{g.store_id}", limit)
    if not allowed:
        resp = jsonify(error="rate_limited", message=f"at most {limit} card look-ups a minute")
        resp.headers["Retry-After"] = str(retry_after)
        return resp, 429
    card = card_lookups.look_up(db, pii_ring(), g.store_id, card_id)
    if card is None:
        return error(404, "unknown_card", "no such card")
    return jsonify(card=card)
