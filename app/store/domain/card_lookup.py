"""A card this store does not hold, asked of the hub (issue 14: a walk-in shopper).

The hub's feed sends a customer's card to the stores where they have an order. A
shopper who walks into another store and scans « Ma carte » is verified offline
(customer_cards.verify_card) and recognised; then, when the hub is reachable, the
store asks it who the card is (``POST /api/v1/cards/lookup``, app/store/sync/
card_fetch.py) and keeps the answer exactly as the feed applier would
(app/store/sync/feed.py: the card, the first name, what is personal, the points). The
hub then counts this store among the customer's for 60 days: a withdrawal, a renewal,
new points or an erasure come through the feed like everywhere else.

The shopper never waits for it long: the question has a short timeout and any failure
(the hub down or slow, an unknown card, a refusal) leaves them recognised anonymously
(« Bonjour ! »), as offline. Log lines name the customer id once known, never the card
id (which is what recognises the person).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

from app.core import db as dbmod
from app.store.domain import customer_cards, personal

log = logging.getLogger(__name__)

#: Asks the hub about a card id: the data of a ``customer_card`` change, None when the
#: hub knows no such live card; raises on any other failure.
Ask = Callable[[str], dict[str, Any] | None]


def holds(db: Database, card_id: str) -> bool:
    """Whether this store already holds the card (from the feed or an earlier look-up)."""
    row = db.execute("SELECT 1 FROM customer_cards WHERE card_id = ?", [card_id]).fetchone()
    return row is not None


def _valid(data: Any, card_id: str) -> bool:
    return (
        isinstance(data, dict)
        and data.get("card_id") == card_id
        and isinstance(data.get("customer_id"), str)
        and 0 < len(data["customer_id"]) <= 64
        and (data.get("first_name") is None or isinstance(data.get("first_name"), str))
    )


def save(db: Database, data: dict[str, Any]) -> None:
    """Keep a card as the hub described it: what the feed applier writes for a
    ``customer_card`` change (any older card of the customer replaced)."""
    customer_cards.forget_customer(db, data["customer_id"])
    customer_cards.save_card(db, data["card_id"], data["customer_id"], data.get("first_name"))
    personal.save(db, data["card_id"], data.get("personal"))
    customer_cards.save_points(db, data["card_id"], data.get("points"))


def learn(db: Database, card_id: str, ask: Ask | None) -> str | None:
    """Ask the hub about a verified card this store does not hold and keep the answer;
    the customer id learnt, or None (already held, no hub to ask, unknown, a failure:
    the shopper stays recognised anonymously). Never raises."""
    if ask is None or not card_id or holds(db, card_id):
        return None
    try:
        data = ask(card_id)
    except Exception as exc:  # noqa: BLE001 (the kiosk goes on anonymously whatever it is)
        log.info("card look-up at the hub failed (%s): the shopper stays anonymous", exc)
        return None
    if data is None:
        return None
    if not _valid(data, card_id):
        log.warning("card look-up: the hub's answer is malformed, ignored")
        return None
    try:
        with dbmod.write(db):
            if holds(db, card_id):  # the feed brought it meanwhile: it is as new
                return data["customer_id"]
            save(db, data)
    except Exception:  # a locked database at a busy moment: the feed will bring it
        log.exception("customer %s: card look-up answer not saved", data["customer_id"])
        return None
    log.info("customer %s: card looked up at the hub, now held here", data["customer_id"])
    return data["customer_id"]
