"""The ``order.*`` transaction handlers: what a store did with a web order.

Each handler runs inside the batch's savepoint (see :mod:`.transactions`): it
validates everything before writing anything, and raises ``Rejected`` to refuse.
They are listed in :mod:`.handlers`.
``handover_id`` and ``return_id`` are primary keys, so the same hand-over or return
sent under a second transaction id is recognised and not applied again.
"""

from __future__ import annotations

import json
from typing import Any

from app.core.clock import now_iso
from app.core.protocol import (
    COLLECTORS,
    CONDITIONS,
    HANDOVER_METHODS,
    MAX_COLLECTOR_NAME,
    MAX_ORDER_ID,
    MAX_REASON,
    MAX_RETURN_QTY,
    MAX_SHELF_SLOT,
    MAX_STAFF_ID,
    MAX_TX_LINES,
    REFUNDS,
)
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import loyalty, notifications, order_people, store_credit
from app.hub.domain.order_rows import get_order
from app.hub.domain.orders import publish, set_status
from app.hub.protocol import personal
from app.hub.protocol.common import Rejected, invalid, is_instant, parse_id

READY_FROM = ("placed", "preparing", "ready", "ready_partial")
HANDOVER_FROM = ("ready", "ready_partial", "partially_collected")
EXPIRE_FROM = ("placed", "preparing", "ready", "ready_partial", "partially_collected")
REMIND_FROM = ("ready", "ready_partial", "partially_collected")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(payload: dict, name: str, limit: int, required: bool = True) -> str | None:
    """A string field of at most ``limit`` characters (non-empty when required)."""
    value = payload.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise invalid(f"payload.{name} must be a string of 1 to {limit} characters")
    return value


def _order_for(db: Db, store_id: str, payload: dict) -> dict[str, Any]:
    """The order named by ``payload.order_id``, if it belongs to the sending store."""
    order_id = payload.get("order_id")
    if not isinstance(order_id, str) or not order_id or len(order_id) > MAX_ORDER_ID:
        raise invalid("payload.order_id must be an order id")
    order = get_order(db, order_id)
    if order is None:
        raise Rejected("unknown_order", f"no order {order_id}")
    if order["store_id"] != store_id:
        raise Rejected("wrong_store", f"order {order_id} is for another store")
    return order


def _lines_by_number(db: Db, order_id: str) -> dict[int, dict[str, Any]]:
    rows = hdb.rows(
        db,
        "SELECT line, sku, qty, qty_ready, qty_collected, qty_returned FROM order_lines "
        "WHERE order_id = ?",
        [order_id],
    )
    return {row["line"]: row for row in rows}


def _line_items(payload: dict, qty_key: str) -> list[tuple[int, int]]:
    """``[(line, qty)]`` from ``payload.lines``; each line at most once."""
    items = payload.get("lines")
    if not isinstance(items, list) or not items or len(items) > MAX_TX_LINES:
        raise invalid("payload.lines must be a non-empty array")
    out: dict[int, int] = {}
    for item in items:
        if not isinstance(item, dict):
            raise invalid("every line must be an object")
        line, qty = item.get("line"), item.get(qty_key)
        if not _is_int(line) or not _is_int(qty):
            raise invalid(f"every line needs an integer line and {qty_key}")
        if line in out:
            raise invalid(f"line {line} is listed twice")
        out[line] = qty
    return list(out.items())


def _result(db: Db, order_id: str) -> dict[str, Any]:
    status = hdb.execute(db, "SELECT status FROM orders WHERE id = ?", [order_id]).fetchone()[0]
    return {"order_id": order_id, "status": status}


# --------------------------------------------------------------------------- ready


def ready(db: Db, store_id: str, payload: dict[str, Any], tx_id: str) -> dict[str, Any]:
    order = _order_for(db, store_id, payload)
    slot = _text(payload, "shelf_slot", MAX_SHELF_SLOT)
    _text(payload, "staff", MAX_STAFF_ID)
    if order["status"] not in READY_FROM:
        raise Rejected("invalid_state", f"order {order['number']} is {order['status']}")
    lines = _lines_by_number(db, order["id"])
    ready = {number: 0 for number in lines}  # a line left out is short entirely
    for line, qty in _line_items(payload, "qty_ready"):
        if line not in lines:
            raise invalid(f"order {order['number']} has no line {line}")
        if not lines[line]["qty_collected"] <= qty <= lines[line]["qty"]:
            raise invalid(f"line {line}: qty_ready must be 0 to {lines[line]['qty']}")
        ready[line] = qty
    if not any(ready.values()):
        raise invalid("nothing is ready: at least one unit is needed")
    hdb.executemany(
        db,
        "UPDATE order_lines SET qty_ready = ? WHERE order_id = ? AND line = ?",
        [(qty, order["id"], line) for line, qty in ready.items()],
    )
    complete = all(ready[n] == lines[n]["qty"] for n in lines)
    status = "ready" if complete else "ready_partial"
    first_time = order["status"] not in ("ready", "ready_partial")
    set_status(db, order["id"], status, now_iso(), shelf_slot=slot)
    if first_time:  # a corrected slot or quantity does not mail the customer again
        notifications.record(db, get_order(db, order["id"]), "ready")
    publish(db, order["id"], tx_id)
    return _result(db, order["id"])


# --------------------------------------------------------------------------- hand-over


def _check_handover(payload: dict[str, Any]) -> dict[str, Any]:
    """The validated hand-over fields that do not depend on the order."""
    collector = payload.get("collector")
    if collector not in COLLECTORS:
        raise invalid("payload.collector must be customer or proxy")
    name = _text(payload, "collector_name", MAX_COLLECTOR_NAME, required=collector == "proxy")
    method = payload.get("method")
    if method not in HANDOVER_METHODS:
        raise invalid("payload.method must be qr, code or override")
    reason = _text(payload, "override_reason", MAX_REASON, required=method == "override")
    staff = _text(payload, "staff", MAX_STAFF_ID)
    manager = _text(payload, "manager", MAX_STAFF_ID, required=method == "override")
    return {
        "collector": collector,
        "collector_name": name if collector == "proxy" else None,
        "method": method,
        "override_reason": reason if method == "override" else None,
        "staff": staff,
        "manager": manager,
    }


def handover(db: Db, store_id: str, payload: dict[str, Any], tx_id: str) -> dict[str, Any]:
    handover_id = parse_id(payload.get("handover_id"))
    if handover_id is None:
        raise invalid("payload.handover_id must be a UUID")
    order = _order_for(db, store_id, payload)
    fields = _check_handover(payload)
    items = _line_items(payload, "qty")
    known = hdb.execute(
        db, "SELECT order_id FROM handovers WHERE handover_id = ?", [handover_id]
    ).fetchone()
    if known is not None:
        if known[0] != order["id"]:
            raise Rejected("conflict", "this handover_id was used for another order")
        # Already recorded under another transaction id: acknowledge, apply nothing.
        return _result(db, order["id"])
    if order["status"] not in HANDOVER_FROM:
        raise Rejected("invalid_state", f"order {order['number']} is {order['status']}")
    lines = _lines_by_number(db, order["id"])
    for line, qty in items:
        if line not in lines:
            raise invalid(f"order {order['number']} has no line {line}")
        left = lines[line]["qty_ready"] - lines[line]["qty_collected"]
        if not 1 <= qty <= left:
            raise invalid(f"line {line}: at most {left} unit(s) left to hand over")
    at = now_iso()
    hdb.execute(
        db,
        "INSERT INTO handovers (handover_id, order_id, lines, collector, collector_name, "
        "method, override_reason, staff, manager, at, tx_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            handover_id,
            order["id"],
            json.dumps([{"line": n, "qty": q} for n, q in items]),
            fields["collector"],
            order_people.sealed_collector(db, fields["collector_name"]),  # sealed at rest
            fields["method"],
            fields["override_reason"],
            fields["staff"],
            fields["manager"],
            at,
            tx_id,
        ],
    )
    hdb.executemany(
        db,
        "UPDATE order_lines SET qty_collected = qty_collected + ? WHERE order_id = ? AND line = ?",
        [(qty, order["id"], line) for line, qty in items],
    )
    left = hdb.execute(
        db,
        "SELECT sum(qty_ready - qty_collected) FROM order_lines WHERE order_id = ?",
        [order["id"]],
    ).fetchone()[0]
    set_status(db, order["id"], "collected" if left == 0 else "partially_collected", at)
    if left == 0:  # loyalty points for the customer, once, on what was collected
        if loyalty.order_collected(db, order["id"], at):
            personal.points_changed(db, order["id"])  # their balance, at their stores
        personal.order_collected(db, order["id"])  # their sizes and suggestions move
    publish(db, order["id"], tx_id)
    return _result(db, order["id"])


# --------------------------------------------------------------------------- expiry


def expired(db: Db, store_id: str, payload: dict[str, Any], tx_id: str) -> dict[str, Any]:
    order = _order_for(db, store_id, payload)
    if order["status"] == "expired":
        return _result(db, order["id"])  # expiring twice changes nothing
    if order["status"] not in EXPIRE_FROM:
        raise Rejected("invalid_state", f"order {order['number']} is {order['status']}")
    set_status(db, order["id"], "expired", now_iso())
    notifications.record(db, get_order(db, order["id"]), "expired")
    publish(db, order["id"], tx_id)
    return _result(db, order["id"])


def reminder(db: Db, store_id: str, payload: dict[str, Any], tx_id: str) -> dict[str, Any]:
    order = _order_for(db, store_id, payload)
    expires_at = payload.get("expires_at")
    if not is_instant(expires_at):
        raise invalid("payload.expires_at must be an ISO-8601 instant")
    if order["status"] not in REMIND_FROM:
        raise Rejected("invalid_state", f"order {order['number']} is {order['status']}")
    already = hdb.execute(
        db, "SELECT 1 FROM notifications WHERE order_id = ? AND kind = 'reminder'", [order["id"]]
    ).fetchone()
    if already is None:  # one reminder per order, whichever device sends it
        notifications.record(db, order, "reminder", expires_at=expires_at)
    return {"order_id": order["id"]}


# --------------------------------------------------------------------------- returns


def _return_lines(
    db: Db, order: dict[str, Any] | None, payload: dict[str, Any]
) -> list[dict[str, Any]]:
    """Validated return lines; with an order, never more than collected minus returned."""
    items = payload.get("lines")
    if not isinstance(items, list) or not items or len(items) > MAX_TX_LINES:
        raise invalid("payload.lines must be a non-empty array")
    lines = _lines_by_number(db, order["id"]) if order else {}
    taken: dict[int, int] = {}
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise invalid("every line must be an object")
        line, sku, qty = item.get("line"), item.get("sku"), item.get("qty")
        condition = item.get("condition")
        if (
            not isinstance(sku, str)
            or not sku
            or not _is_int(qty)
            or not 1 <= qty <= MAX_RETURN_QTY
        ):
            raise invalid("every line needs a sku and a qty of 1 or more")
        if condition not in CONDITIONS:
            raise invalid("condition must be resellable or damaged")
        if order is None:
            if line is not None:
                raise invalid("a return without an order has no line numbers")
            if hdb.execute(db, "SELECT 1 FROM variants WHERE sku = ?", [sku]).fetchone() is None:
                raise Rejected("unknown_sku", f"no variant {sku}")
        else:
            if not _is_int(line) or line not in lines:
                raise invalid(f"order {order['number']} has no line {line!r}")
            if lines[line]["sku"] != sku:
                raise invalid(f"line {line} is {lines[line]['sku']}, not {sku}")
            taken[line] = taken.get(line, 0) + qty
            left = lines[line]["qty_collected"] - lines[line]["qty_returned"]
            if taken[line] > left:
                raise invalid(f"line {line}: at most {left} unit(s) can be returned")
        out.append({"line": line, "sku": sku, "qty": qty, "condition": condition})
    return out


def returned(db: Db, store_id: str, payload: dict[str, Any], tx_id: str) -> dict[str, Any]:
    return_id = parse_id(payload.get("return_id"))
    if return_id is None:
        raise invalid("payload.return_id must be a UUID")
    order = None if payload.get("order_id") is None else _order_for(db, store_id, payload)
    reason = payload.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise invalid(f"payload.reason must be a string of at most {MAX_REASON} characters")
    refund = payload.get("refund")
    if refund not in REFUNDS:
        raise invalid("payload.refund must be original_payment or store_credit")
    staff = _text(payload, "staff", MAX_STAFF_ID)
    manager = _text(payload, "manager", MAX_STAFF_ID, required=order is None)
    known = hdb.execute(
        db,
        "SELECT order_id, store_id, refund, credit_code FROM returns WHERE return_id = ?",
        [return_id],
    ).fetchone()
    if known is not None:
        # Already recorded under another transaction id: the same answer, nothing again.
        if known[0] != (order["id"] if order else None) or known[1] != store_id:
            raise Rejected("conflict", "this return_id was used for another return")
        return _return_result(return_id, known[2], known[3])
    if (
        order is not None
        and not hdb.execute(
            db, "SELECT sum(qty_collected) FROM order_lines WHERE order_id = ?", [order["id"]]
        ).fetchone()[0]
    ):
        raise Rejected("invalid_state", f"nothing of order {order['number']} was collected")
    lines = _return_lines(db, order, payload)
    credit = store_credit.fresh_code(db) if refund == "store_credit" else None
    if credit is not None:
        # The code can be spent (app/hub/domain/store_credit.py): worth what the returned
        # units were paid, the order's customer's when there is one.
        store_credit.record(
            db,
            credit,
            store_credit.return_value(db, order["id"] if order else None, lines),
            "return",
            return_id,
            order.get("customer_id") if order else None,
        )
    hdb.execute(
        db,
        "INSERT INTO returns (return_id, order_id, store_id, lines, reason, refund, "
        "credit_code, staff, manager, at, tx_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            return_id,
            order["id"] if order else None,
            store_id,
            json.dumps(lines),
            reason,
            refund,
            credit,
            staff,
            manager,
            now_iso(),
            tx_id,
        ],
    )
    if order is not None:
        hdb.executemany(
            db,
            "UPDATE order_lines SET qty_returned = qty_returned + ? "
            "WHERE order_id = ? AND line = ?",
            [(line["qty"], order["id"], line["line"]) for line in lines],
        )
        notifications.record(db, order, "returned", refund=refund, credit_code=credit)
        # The points the returned units earned go back, once per return.
        if loyalty.order_returned(db, order["id"], return_id, lines):
            personal.points_changed(db, order["id"])
        publish(db, order["id"], tx_id)
    return _return_result(return_id, refund, credit)


def _return_result(return_id: str, refund: str, credit: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "return_id": return_id,
        "refund": "store_credit" if refund == "store_credit" else "requested",
    }
    if credit:
        result["credit_code"] = credit
    return result
