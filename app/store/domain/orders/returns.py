"""Taking goods back: finding the order (its pickup QR, or its number and the customer's
first name: the store holds no surname or e-mail) and recording the return
(``order.return`` for the hub; resellable units go back to stock at once)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlite_utils import Database

from app.core import catalog, clock
from app.core import db as dbmod
from app.core.protocol import CONDITIONS, MAX_RETURN_QTY, ORDER_RETURN, REFUNDS
from app.store.domain import outbox, staff
from app.store.domain.orders.pickup import verify_token
from app.store.domain.orders.queries import (
    customer_key,
    find_by_number,
    require,
    require_manager,
    return_record,
)
from app.store.domain.orders.status import OrderError, touch
from app.store.domain.stock import record_movement


def find_for_return(
    db: Database, *, token: str = "", number: str = "", first_name: str = ""
) -> dict[str, Any]:
    """The order to take a return for: its pickup QR, or its number and the customer's
    first name (all the store holds of them). Refused: ``unknown_order``,
    ``details_mismatch`` (also once the first name is forgotten: the QR code then, or a
    manager's return without an order) and QR errors."""
    if token:
        return verify_token(db, token, allow_expired=True)
    order = find_by_number(db, number)
    if order is None:
        raise OrderError("unknown_order", "no order with this number")
    given = customer_key(first_name).split()
    held = customer_key(order["customer_name"]).split()
    if not given or not held or given[0] != held[0]:
        raise OrderError("details_mismatch", "the first name does not match")
    return order


def record_return(
    db: Database,
    order_id: str | None,
    lines: list[dict[str, Any]],
    *,
    reason: str,
    refund: str,
    staff_id: str,
    manager_id: str | None = None,
    return_id: str | None = None,
    device: str = "",
) -> dict[str, Any]:
    """Take goods back: at most collected minus already returned per line.

    ``lines``: ``{"line", "qty", "condition"}`` (with an order) or ``{"code", "qty",
    "condition"}`` (no order found: manager only). Resellable units go back to stock at
    once (``returned`` movement); damaged ones do not. ``order.return`` asks the hub for
    the refund to the original payment or for store credit.
    """
    reason = " ".join((reason or "").split())
    if not (1 <= len(reason) <= 500):
        raise OrderError("reason", "a reason (1 to 500 characters) is needed")
    if refund not in REFUNDS:
        raise OrderError("refund", "refund to the original payment or store credit")
    try:
        return_id = str(uuid.UUID(return_id)) if return_id else str(uuid.uuid4())
    except ValueError as exc:
        raise OrderError("invalid_id", "bad return id") from exc
    with dbmod.write(db):
        existing = return_record(db, return_id)
        if existing is not None:
            if existing.get("order_id") != order_id:
                raise OrderError("invalid_id", "this return id belongs to another return")
            return {**existing, "repeat": True}
        order = None
        if order_id is None:
            require_manager(db, manager_id)
        else:
            order = require(db, order_id)
        chosen = []
        for item in lines:
            qty, condition = item.get("qty"), item.get("condition")
            if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
                raise OrderError("invalid_qty", "quantities are whole numbers from 0")
            if qty > MAX_RETURN_QTY:
                # The hub refuses more: never queue a stock movement it would accept
                # for a return it refuses.
                raise OrderError(
                    "qty_out_of_range", f"at most {MAX_RETURN_QTY} per line", left=MAX_RETURN_QTY
                )
            if condition not in CONDITIONS:
                raise OrderError("condition", "resellable or damaged")
            if qty == 0:
                continue
            if order is not None:
                ln = next((x for x in order["lines"] if x["line"] == item.get("line")), None)
                if ln is None:
                    raise OrderError("unknown_line", "no such line in this order")
                left = ln["qty_collected"] - ln["qty_returned"]
                if qty > left:
                    raise OrderError(
                        "qty_out_of_range",
                        "more than was collected and kept",
                        line=ln["line"],
                        left=left,
                    )
                ln["qty_returned"] += qty  # two entries for one line add up
                chosen.append(
                    {
                        "line": ln["line"],
                        "sku": ln["sku"],
                        "qty": qty,
                        "condition": condition,
                        "name": ln["name_fr"],
                    }
                )
            else:
                variant = catalog.find_variant(db, str(item.get("code") or "").strip())
                if variant is None:
                    raise OrderError("unknown_item", "no product has this barcode")
                chosen.append(
                    {
                        "line": None,
                        "sku": variant["sku"],
                        "qty": qty,
                        "condition": condition,
                        "name": variant["sku"],
                    }
                )
        if not chosen:
            raise OrderError("nothing_chosen", "choose at least one item")
        for c in chosen:
            if order is not None:
                db.execute(
                    """UPDATE order_lines SET qty_returned = qty_returned + ?
                       WHERE order_id = ? AND line = ?""",
                    [c["qty"], order_id, c["line"]],
                )
            if c["condition"] == "resellable":
                label = order["number"] if order else "no order"
                record_movement(db, c["sku"], c["qty"], "returned", f"return {label}", staff_id)
        if order is not None:
            touch(db, order_id)
        record = {
            "id": return_id,
            "order_id": order_id,
            "at": clock.now_iso(),
            "staff_id": staff_id,
            "manager_id": manager_id,
            "reason": reason,
            "refund": refund,
            "lines": json.dumps(chosen),
        }
        db["returns"].insert(record)
        payload = {
            "return_id": return_id,
            "order_id": order_id,
            "lines": [{k: c[k] for k in ("line", "sku", "qty", "condition")} for c in chosen],
            "reason": reason,
            "refund": refund,
            "staff": staff_id,
        }
        if manager_id:
            payload["manager"] = manager_id
        outbox.enqueue(db, ORDER_RETURN, payload, order_id=order_id)
        staff.audit(
            db,
            staff_id,
            "order.return",
            device,
            {"order_id": order_id, "return_id": return_id, "refund": refund, "manager": manager_id},
        )
    return {**record, "lines": chosen, "repeat": False}
