"""Expiring ready orders past their last day to collect, and queueing the reminder on
that last day. The store server runs it every minute (app/store/jobs.py); ``kiosk
orders expire`` runs it once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod
from app.core.protocol import ORDER_EXPIRED, ORDER_REMINDER
from app.store.domain import outbox, staff
from app.store.domain.orders.calendar import Calendar
from app.store.domain.orders.queries import get_order
from app.store.domain.orders.status import READY, touch
from app.store.domain.stock import record_movement


def expire_due(db: Database, now: datetime | None = None, device: str = "expiry") -> dict:
    """Expire what is past its last day and queue reminders due today.

    Each expiry is one transaction: the order expired, ``order.expired`` queued, and a
    ``released`` stock movement per line (units ready and not collected), so the kiosk
    shows them available at once. A reminder (``order.reminder``) is queued once, on
    the last day to collect.
    """
    now = now or clock.utcnow()
    stamp = clock.iso(now)
    cal = Calendar(db)
    expired, reminded = [], []
    due = [
        r[0]
        for r in db.execute(
            """SELECT id FROM orders WHERE expires_at IS NOT NULL AND expires_at <= ?
               AND status IN ('ready', 'ready_partial', 'partially_collected')""",
            [stamp],
        ).fetchall()
    ]
    for order_id in due:
        with dbmod.write(db):
            order = get_order(db, order_id)
            # Re-checked under the write lock: a hand-over may have just happened.
            if order is None or order["status"] not in READY or order["expires_at"] > stamp:
                continue
            touch(db, order_id, status="expired")
            outbox.enqueue(db, ORDER_EXPIRED, {"order_id": order_id}, order_id=order_id)
            for ln in order["lines"]:
                back = ln["qty_ready"] - ln["qty_collected"]
                if back > 0:
                    reason = f"order {order['number']} expired"
                    record_movement(db, ln["sku"], back, "released", reason, "expiry")
            staff.audit(db, None, "order.expired", device, {"order_id": order_id})
        expired.append(order_id)
    horizon = clock.iso(now + timedelta(days=2))
    candidates = db.execute(
        """SELECT id, expires_at FROM orders WHERE reminder_queued = 0
           AND expires_at IS NOT NULL AND expires_at > ? AND expires_at <= ?
           AND status IN ('ready', 'ready_partial', 'partially_collected')""",
        [stamp, horizon],
    ).fetchall()
    today = cal.local_date(now)
    for order_id, expires_at in candidates:
        last = cal.local_date(clock.parse_iso(expires_at) - timedelta(seconds=1))
        if today < last:
            continue
        with dbmod.write(db):
            changed = db.execute(
                "UPDATE orders SET reminder_queued = 1 WHERE id = ? AND reminder_queued = 0",
                [order_id],
            ).rowcount
            if changed:
                outbox.enqueue(
                    db,
                    ORDER_REMINDER,
                    {"order_id": order_id, "expires_at": expires_at},
                    order_id=order_id,
                )
        if changed:
            reminded.append(order_id)
    return {"expired": expired, "reminded": reminded}
