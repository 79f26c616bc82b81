"""What settles a queued transaction: the per-type acknowledgement hooks, listed here,
and head office's retry or discard of a parked row.

The outbox (app/store/domain/outbox.py) knows no transaction type: when a row leaves the
queue settled (the hub acknowledged it, head office discarded it), it runs the hook its
type has in :data:`ACK_HOOKS`, in the same transaction. Each hook is owned by the module
of its type; a type with nothing to do on its own tables has none. The sync worker
passes this table to :func:`app.store.domain.outbox.mark_acked`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlite_utils import Database

from app.core import db as dbmod
from app.core.protocol import (
    CART_SENT,
    COMMAND_ACTIONS,
    CONSENT_REVOKED,
    ORDER_REQUEST,
    RESERVATION_CREATED,
    STOCK_MOVEMENT,
)
from app.store.domain import account_actions, consent, outbox, stock
from app.store.domain.staff import audit

ACK_HOOKS: Mapping[str, outbox.AckHook] = {
    STOCK_MOVEMENT: stock.on_acked,
    # A recognised shopper's card id, forgotten once the hub has the transaction.
    ORDER_REQUEST: account_actions.on_acked,
    RESERVATION_CREATED: account_actions.on_acked,
    CART_SENT: account_actions.on_acked,
    # A kiosk withdrawal: the card id forgotten too; the withdrawal held until the hub
    # sends the card again (app/store/domain/consent.py).
    CONSENT_REVOKED: consent.on_acked,
}

# The same effect for a batch of rows of one type, set-based (outbox.mark_acked_many,
# used by the sync worker); a type not listed here gets its hook above per row.
ACK_BATCH_HOOKS: Mapping[str, outbox.AckBatchHook] = {
    STOCK_MOVEMENT: stock.on_acked_many,
}


def apply_command(
    db: Database,
    tx_id: str,
    action: str,
    reason: str = "",
    by: str = "",
    now: datetime | None = None,
) -> int:
    """Carry out head office's decision on a parked row (an ``outbox_command`` change).

    ``retry``: the row is unparked with a fresh attempt count and goes out again (the
    hub forgot its rejection when it sent the command, so it judges it anew); a parked
    stock movement counts in the shown level again, as any unsent one does.
    ``discard``: the row leaves the queue for good, marked acknowledged with a result
    saying it was discarded, by whom and why; its type's hook settles it (a stock
    movement stays out of the shown level, as it was while parked, without being sent).
    Only a parked, unacknowledged row changes: a command seen again (a feed page read
    twice) or for a row since settled does nothing. Returns 1 if a row changed, else 0.
    """
    if action not in COMMAND_ACTIONS:
        raise ValueError(f"unknown outbox command {action!r}")
    with dbmod.write(db):
        if action == "retry":
            kind = outbox.unpark(db, tx_id)
        else:
            kind = outbox.discard(db, tx_id, reason=reason, by=by, now=now, hooks=ACK_HOOKS)
        if kind is None:
            return 0
        audit(
            db,
            None,
            f"outbox.{action}",
            "head office",
            {"tx_id": tx_id, "type": kind, "reason": reason[:300], "by": by[:254]},
        )
    return 1
