"""A customer erased at the hub, forgotten by this store (issue 14, the right to erasure).

The hub's feed sends a ``customer_erased`` change (app/core/protocol.py) carrying ids
only: the customer id, their card ids and the ids of the orders they placed. This
store then deletes what it holds of their cards (``customer_cards``: the first name the
kiosk greets them with) and blanks the personal fields of its copies of those orders
(name, e-mail, initials, the search key, a proxy collector's name); amounts, lines,
dates and statuses stay, as the hub keeps them for the accounts.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from app.store.domain import forgetting

MAX_IDS = 10_000


def _ids(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value[:MAX_IDS] if isinstance(v, str) and v]


def forget(db: Database, customer_id: str, card_ids: list[str], order_ids: list[str]) -> int:
    """Delete the customer's cards and blank their orders' personal fields; rows written."""
    written = db.execute("DELETE FROM customer_cards WHERE customer_id = ?", [customer_id]).rowcount
    for card_id in card_ids:
        written += db.execute("DELETE FROM customer_cards WHERE card_id = ?", [card_id]).rowcount
    for order_id in order_ids:
        written += db.execute(
            "UPDATE orders SET customer_name = '', customer_key = '', customer_email = '', "
            "customer_initials = '' WHERE id = ?",
            [order_id],
        ).rowcount
        db.execute("UPDATE handovers SET collector_name = '' WHERE order_id = ?", [order_id])
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
