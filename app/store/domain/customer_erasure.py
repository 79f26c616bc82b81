"""A customer erased at the hub, forgotten by this store (issue 14, the right to erasure).

The hub's feed sends a ``customer_erased`` change (app/core/protocol.py) carrying ids
only: the customer id, their card ids and the ids of the orders they placed. This
store then deletes what it holds of their cards (``customer_cards``: the first name the
kiosk greets them with) and any withdrawal of consent held for them, forgets who those
orders were for as the forgetting job does (app/store/domain/forgetting.py:
:func:`~app.store.domain.forgetting.forget_order`: name, e-mail, initials, the search
key, the customer id, a proxy collector's name, on the order and in its acknowledged
hand-over transactions), and strips their card ids from the outbox (a withdrawal naming
one is deleted). Amounts, lines, dates and statuses stay, as the hub keeps them for the
accounts.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from app.core.protocol import CONSENT_REVOKED
from app.store.domain import consent, forgetting

MAX_IDS = 10_000


def _ids(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value[:MAX_IDS] if isinstance(v, str) and v]


def forget(db: Database, customer_id: str, card_ids: list[str], order_ids: list[str]) -> int:
    """Delete the customer's cards and withdrawals, forget who their orders were for (the
    forgetting job's own per-order helper) and every outbox row naming one of their
    cards; rows written."""
    cards = set(card_ids)
    cards.update(
        r[0]
        for r in db.execute(
            "SELECT card_id FROM customer_cards WHERE customer_id = ? UNION "
            "SELECT card_id FROM card_revocations WHERE customer_id = ?",
            [customer_id, customer_id],
        ).fetchall()
    )
    written = db.execute("DELETE FROM customer_cards WHERE customer_id = ?", [customer_id]).rowcount
    for card_id in card_ids:
        written += db.execute("DELETE FROM customer_cards WHERE card_id = ?", [card_id]).rowcount
    written += consent.forget_customer(db, customer_id, sorted(cards))
    for order_id in order_ids:
        written += forgetting.forget_order(db, order_id)
    written += forget_card_ids(db, sorted(cards))
    return written


def forget_card_ids(db: Database, card_ids: list[str]) -> int:
    """The outbox forgets these cards: a withdrawal naming one is deleted (sent or not:
    the hub has nobody to apply it to), any other row (a reservation, a cart sent to the
    phone, an order request) loses its card id and goes on as an anonymous one."""
    written = 0
    for start in range(0, len(card_ids), 500):
        chunk = card_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        written += db.execute(
            f"DELETE FROM outbox WHERE type = ? AND json_extract(payload, '$.card_id') "  # noqa: S608
            f"IN ({marks})",
            [CONSENT_REVOKED, *chunk],
        ).rowcount
        for tx_id, payload in db.execute(
            f"SELECT id, payload FROM outbox WHERE json_extract(payload, '$.card_id') "  # noqa: S608
            f"IN ({marks})",
            chunk,
        ).fetchall():
            written += forgetting.drop_keys(db, tx_id, payload, ("card_id",))
    return written


def apply_customer_erasures(db: Database, changes: list[dict], own: str | None) -> int:
    """The feed applier of ``customer_erased`` changes (app/store/sync/feed.py)."""
    written = 0
    for change in changes:
        data = change["data"]
        customer_id = data["customer_id"]
        if not isinstance(customer_id, str) or not customer_id:
            raise ValueError("customer_erased without a customer id")
        written += forget(db, customer_id, _ids(data.get("card_ids")), _ids(data.get("order_ids")))
    if changes:
        # An order request the kiosk sent for them held their name and e-mail: whatever
        # the hub acknowledged is dropped now, not at the forgetting job's next turn.
        written += forgetting.forget_requests(db)
    return written
