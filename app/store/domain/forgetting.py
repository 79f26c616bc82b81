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
  an order still open here;
- a kiosk withdrawal of consent that no longer holds (app/store/domain/consent.py);
- the staff audit log's rows older than AUDIT_LOG_DAYS days (1 year, as the hub's
  head-office audit).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod
from app.core.protocol import ORDER_HANDOVER, ORDER_REQUEST
from app.store.domain import consent, customer_cards

#: Days a closed order keeps its customer's first name at this store (docs/data-protection.md).
FORGET_ORDER_NAME_DAYS = 30
#: Days a « Ma carte » card is kept once the hub's feed stops sending it.
FORGET_CARD_DAYS = 60
#: Days the store's staff audit log keeps a row (as the hub's head-office audit: 1 year).
AUDIT_LOG_DAYS = 365
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
        forget_order(db, order_id)
        db.execute("UPDATE orders SET forgotten_at = ? WHERE id = ?", [now, order_id])
    return ids


def forget_order(db: Database, order_id: str) -> int:
    """Forget who an order was for (inside the caller's write): its first name, search
    key, initials, e-mail and customer id, a proxy collector's name on its hand-over and
    in the acknowledged hand-over transactions. Amounts, lines, dates and statuses stay.
    The one helper of the forgetting job and of an erasure
    (app/store/domain/customer_erasure.py); rows written."""
    written = db.execute(
        "UPDATE orders SET customer_name = '', customer_key = '', customer_email = '', "
        "customer_initials = '', customer_id = NULL WHERE id = ?",
        [order_id],
    ).rowcount
    db.execute("UPDATE handovers SET collector_name = '' WHERE order_id = ?", [order_id])
    for tx_id, payload in db.execute(
        "SELECT id, payload FROM outbox WHERE order_id = ? AND type = ? AND acked_at IS NOT NULL",
        [order_id, ORDER_HANDOVER],
    ).fetchall():
        drop_keys(db, tx_id, payload, ("collector_name",))
    return written


def drop_keys(db: Database, tx_id: str, payload: str, keys: tuple[str, ...]) -> bool:
    """Drop ``keys`` from a queued transaction's JSON payload; whether it changed."""
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
        done += drop_keys(db, tx_id, payload, REQUEST_PERSONAL)
    return done


def forget_audit(db: Database, now: str) -> int:
    """Delete the staff audit log's rows older than AUDIT_LOG_DAYS days; how many."""
    cutoff = clock.iso(clock.parse_iso(now) - timedelta(days=AUDIT_LOG_DAYS))
    return db.execute("DELETE FROM audit_log WHERE at < ?", [cutoff]).rowcount


def forget_due(db: Database, now: str | None = None) -> dict[str, int]:
    """The store's forgetting job (app/store/jobs.py): one write transaction; counts."""
    now = now or clock.now_iso()
    with dbmod.write(db):
        closed = stamp_closed(db, now)
        orders = forget_orders(db, now)
        requests = forget_requests(db)
        cards = customer_cards.forget_unseen(db, FORGET_CARD_DAYS, now)
        withdrawals = consent.prune(db)
        audit_rows = forget_audit(db, now)
    return {
        "closed": closed,
        "orders": len(orders),
        "requests": requests,
        "cards": cards,
        "withdrawals": withdrawals,
        "audit": audit_rows,
    }
