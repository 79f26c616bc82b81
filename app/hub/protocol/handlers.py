"""The registry of transaction handlers: one line per transaction type.

A handler is ``handler(db, store_id, payload, tx_id) -> result``; it raises
:class:`app.hub.protocol.common.Rejected` to refuse. :mod:`.transactions` dispatches
through :data:`HANDLERS`; a type not listed here is ``unknown_type``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.core import protocol
from app.hub.database import Db
from app.hub.protocol import consent, kiosk_actions, order_request, orders, stock

Handler = Callable[[Db, str, dict[str, Any], str], dict[str, Any]]

HANDLERS: dict[str, Handler] = {
    protocol.STOCK_MOVEMENT: stock.movement,
    protocol.ORDER_READY: orders.ready,
    protocol.ORDER_HANDOVER: orders.handover,
    protocol.ORDER_EXPIRED: orders.expired,
    protocol.ORDER_REMINDER: orders.reminder,
    protocol.ORDER_RETURN: orders.returned,
    protocol.ORDER_REQUEST: order_request.order_request,
    protocol.CONSENT_REVOKED: consent.revoked,
    protocol.RESERVATION_CREATED: kiosk_actions.reservation_created,
    protocol.RESERVATION_CLOSED: kiosk_actions.reservation_closed,
    protocol.CART_SENT: kiosk_actions.cart_sent,
}
