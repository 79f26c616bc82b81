"""What a store forgets, and when (issue 14, RGPD: "stores receive only what they need
and forget it when it is no longer needed").

A store holds a customer's first name on its copy of their order (the counter greets
them and finds the order by it), the name of someone collecting for them, the e-mail
and address typed at the kiosk for an order request, and the cards of « Ma carte »
(app/store/domain/customer_cards.py). :func:`forget_due` is the daily-or-more store job
(app/store/jobs.py runs it with the expiries, every minute) that forgets each once it is
no longer needed:

- an order's first name (its search key and initials with it), its customer id and a
  proxy collector's name: FORGET_ORDER_NAME_DAYS days after this store first saw the
  order closed (collected, expired or cancelled; a collected order's returns are taken
  in that time). The order itself stays: number, lines, amounts, dates, statuses;
- the customer's name, e-mail and address in an ``order.request`` the kiosk queued: as
  soon as the hub has acknowledged it (the hub holds them, encrypted); a refused
  request keeps them until head office discards it;
- the same personal fields in the hand-over transactions of a forgotten order;
- a card the hub's feed has not sent for FORGET_CARD_DAYS days, unless its customer has
  an order still open here.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod
from app.core.protocol import ORDER_HANDOVER, ORDER_REQUEST
from app.store.domain import customer_cards

#: Days a closed order keeps its customer's first name at this store (docs/data-protection.md).
FORGET_ORDER_NAME_DAYS = 30
#: Days a « Ma carte » card is kept once the hub's feed stops sending it.
FORGET_CARD_DAYS = 60
CLOSED = ("collected", "expired", "cancelled")
#: The personal fields of a queued order request, dropped once the hub has it.
REQUEST_PERSONAL = ("customer_name", "customer_email", "address")
_BATCH = 500


def stamp_closed(db: Database, now: str) -> int:
    """Note when each order was first seen closed here (inside the caller's write)."""
    return db.execute(
        "UPDATE orders SET closed_at = ? WHERE closed_at IS NULL AND status IN (?, ?, ?)",
        [now, *CLOSED],
    ).rowcount


def forget_orders(db: Database, now: str) -> list[str]:
    """Forget the first name of orders closed FORGET_ORDER_NAME_DAYS ago; their ids."""
    cutoff = clock.iso(clock.parse_iso(now) - timedelta(days=FORGET_ORDER_NAME_DAYS))
    ids = [
        r[0]
        for r in db.execute(
            "SELECT id FROM orders WHERE closed_at IS NOT NULL AND closed_at <= ? "
            "AND forgotten_at IS NULL LIMIT ?",
            [cutoff, _BATCH],
        ).fetchall()
    ]
    for order_id in ids:
        db.execute(
            "UPDATE orders SET customer_name = '', customer_key = '', customer_email = '', "
            "customer_initials = '', customer_id = NULL, forgotten_at = ? WHERE id = ?",
            [now, order_id],
        )
        db.execute("UPDATE handovers SET collector_name = '' WHERE order_id = ?", [order_id])
        for tx_id, payload in db.execute(
            "SELECT id, payload FROM outbox WHERE order_id = ? AND type = ? "
            "AND acked_at IS NOT NULL",
            [order_id, ORDER_HANDOVER],
        ).fetchall():
            _drop(db, tx_id, payload, ("collector_name",))
    return ids


def _drop(db: Database, tx_id: str, payload: str, keys: tuple[str, ...]) -> bool:
    try:
        data: Any = json.loads(payload)
    except ValueError:
        return False
    if not isinstance(data, dict) or not any(k in data for k in keys):
        return False
    kept = {k: v for k, v in data.items() if k not in keys}
    db.execute(
        "UPDATE outbox SET payload = ? WHERE id = ?",
        [json.dumps(kept, separators=(",", ":")), tx_id],
    )
    return True


def forget_requests(db: Database) -> int:
    """Drop the customer's details from order requests the hub has acknowledged."""
    done = 0
    for tx_id, payload in db.execute(
        "SELECT id, payload FROM outbox WHERE type = ? AND acked_at IS NOT NULL "
        "AND (payload LIKE '%\"customer_email\"%' OR payload LIKE '%\"customer_name\"%')",
        [ORDER_REQUEST],
    ).fetchall():
        done += _drop(db, tx_id, payload, REQUEST_PERSONAL)
    return done


def forget_due(db: Database, now: str | None = None) -> dict[str, int]:
    """The store's forgetting job (app/store/jobs.py): one write transaction; counts."""
    now = now or clock.now_iso()
    with dbmod.write(db):
        closed = stamp_closed(db, now)
        orders = forget_orders(db, now)
        requests = forget_requests(db)
        cards = customer_cards.forget_unseen(db, FORGET_CARD_DAYS, now)
    return {"closed": closed, "orders": len(orders), "requests": requests, "cards": cards}
