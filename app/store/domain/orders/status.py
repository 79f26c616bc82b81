"""What every order action shares: the statuses in their order, the refusal
(:class:`OrderError`, with a stable ``code`` the UI turns into a sentence) and the one
way an order's row is changed (:func:`touch`, which stamps ``updated_at``)."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from app.core import clock

READY = ("ready", "ready_partial", "partially_collected")  # can be handed over / expire
# Statuses in order: an order never moves backwards (docs/protocol.md).
RANK = {
    "placed": 0,
    "preparing": 1,
    "ready": 2,
    "ready_partial": 2,
    "partially_collected": 3,
    "collected": 4,
    "expired": 4,
    "cancelled": 5,
}


class OrderError(ValueError):
    """An order action refused; ``code`` is stable for the UI and tests."""

    def __init__(self, code: str, message: str = "", **extra: Any) -> None:
        super().__init__(message or code)
        self.code = code
        self.extra = extra


def touch(db: Database, order_id: str, **fields: Any) -> None:
    """Set ``fields`` on the order and stamp ``updated_at`` (inside the caller's write)."""
    fields["updated_at"] = clock.now_iso()
    sets = ", ".join(f"{k} = ?" for k in fields)
    db.execute(
        f"UPDATE orders SET {sets} WHERE id = ?",  # noqa: S608
        [*fields.values(), order_id],
    )
