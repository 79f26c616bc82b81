"""Handing an order over: checking the collector (the pickup QR, checked offline with
the hub's key, or the 6-digit pickup code, locked after 5 wrong ones) and the hand-over
itself (``order.handover`` for the hub).

The check that decides a hand-over is made inside its write transaction: two tablets
handing over one order at the same second are serialised by SQLite's write lock, and
the second one sees the first one's work.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from app.core import clock, tokens
from app.core import db as dbmod
from app.core.protocol import COLLECTORS, HANDOVER_METHODS, ORDER_HANDOVER
from app.core.secrets import verify_secret
from app.store.domain import outbox, staff
from app.store.domain.hub_keys import hub_keys
from app.store.domain.orders.queries import (
    find_by_number,
    get_order,
    handover_record,
    normalise_number,
    require,
    require_manager,
)
from app.store.domain.orders.status import READY, OrderError, touch
from app.store.domain.stock import self_store_id

MAX_CODE_FAILURES = 5
CODE_LENGTH = 6


def _token_payload(db: Database, token: str, now: datetime | None, allow_expired: bool) -> dict:
    keys = hub_keys(db)
    if not keys:
        raise OrderError("no_hub_key", "this store has not received the hub's key yet")
    stamp = (now or clock.utcnow()).timestamp()
    try:
        return tokens.verify(keys, token.strip(), "pickup", now=stamp)
    except tokens.TokenError as exc:
        if exc.code != "expired" or not allow_expired:
            raise OrderError(exc.code, exc.message) from exc
    # A return may come after the pickup QR expired: still check the signature.
    _, payload, _ = tokens._parse(token.strip())
    try:
        return tokens.verify(keys, token.strip(), "pickup", now=payload["exp"] - 1)
    except (tokens.TokenError, TypeError) as exc:
        raise OrderError(getattr(exc, "code", "malformed"), str(exc)) from exc


def verify_token(
    db: Database, token: str, now: datetime | None = None, *, allow_expired: bool = False
) -> dict[str, Any]:
    """The order a pickup QR is for, checked offline with the hub's key.

    Refused: ``malformed``, ``bad_signature``, ``expired``, ``unknown_key``, ``wrong_kind``,
    ``wrong_store`` (a QR for another shop), ``unknown_order``.
    """
    payload = _token_payload(db, token, now, allow_expired)
    if payload.get("s") != self_store_id(db):
        raise OrderError("wrong_store", "this QR code is for another store")
    order = get_order(db, str(payload.get("o") or ""))
    if order is None:
        raise OrderError("unknown_order", "this store has no such order")
    return order


def looks_like_token(code: str) -> bool:
    return (code or "").strip().startswith(tokens.PREFIX + ".")


def verify_code(
    db: Database, number: str, code: str, staff_id: str, device: str = ""
) -> dict[str, Any]:
    """The order if ``code`` is its pickup code; 5 wrong codes lock it for a manager.

    Refused: ``unknown_order``, ``code_format``, ``code_locked``, ``wrong_code``
    (with ``attempts_left``). A refusal's count and audit entry are committed.
    """
    code = (code or "").strip()
    order = find_by_number(db, number) if normalise_number(number) else get_order(db, number)
    if order is None:
        raise OrderError("unknown_order", "no order with this number")
    if not (len(code) == CODE_LENGTH and code.isascii() and code.isdigit()):
        raise OrderError("code_format", "a pickup code is 6 digits")
    order_id = order["id"]
    error: OrderError
    with dbmod.write(db):
        row = db.execute(
            "SELECT code_failures, code_locked, pickup_code_hash FROM orders WHERE id = ?",
            [order_id],
        ).fetchone()
        failures, locked, stored = row
        if locked:
            staff.audit(db, staff_id, "order.code_refused_locked", device, {"order_id": order_id})
            error = OrderError("code_locked", "too many wrong codes: a manager must unlock")
        elif stored and verify_secret(code, stored):
            touch(db, order_id, code_failures=0)
            staff.audit(db, staff_id, "order.code_ok", device, {"order_id": order_id})
            return require(db, order_id)
        else:
            failures += 1
            if failures >= MAX_CODE_FAILURES:
                touch(db, order_id, code_failures=failures, code_locked=1)
                staff.audit(db, staff_id, "order.code_locked", device, {"order_id": order_id})
                error = OrderError("code_locked", "too many wrong codes: a manager must unlock")
            else:
                touch(db, order_id, code_failures=failures)
                staff.audit(
                    db,
                    staff_id,
                    "order.code_wrong",
                    device,
                    {"order_id": order_id, "failures": failures},
                )
                error = OrderError(
                    "wrong_code", "wrong pickup code", attempts_left=MAX_CODE_FAILURES - failures
                )
    raise error


def unlock_code(db: Database, order_id: str, manager_id: str, device: str = "") -> None:
    """A manager lifts a pickup-code lockout."""
    with dbmod.write(db):
        require_manager(db, manager_id)
        require(db, order_id)
        touch(db, order_id, code_failures=0, code_locked=0)
        staff.audit(db, manager_id, "order.code_unlocked", device, {"order_id": order_id})


def handover(
    db: Database,
    order_id: str,
    *,
    staff_id: str,
    method: str,
    lines: dict[int, int] | None = None,
    collector: str = "customer",
    collector_name: str = "",
    manager_id: str | None = None,
    override_reason: str = "",
    handover_id: str | None = None,
    device: str = "",
) -> dict[str, Any]:
    """Give the customer (or their named proxy) what is ready: all of it or ``lines``.

    ``lines`` maps line number to quantity (0 = not now). The check (ready, not handed
    over already) and the write are one ``BEGIN IMMEDIATE`` transaction, so the same
    units can never be handed over twice. A repeated ``handover_id`` (a double tap)
    returns the first hand-over with ``repeat=True`` and changes nothing.
    """
    if method not in HANDOVER_METHODS:
        raise OrderError("invalid_method", "unknown verification method")
    if collector not in COLLECTORS:
        raise OrderError("invalid_collector", "customer or proxy")
    collector_name = " ".join((collector_name or "").split())
    if collector == "proxy" and not (1 <= len(collector_name) <= 80):
        raise OrderError("proxy_name", "the proxy's name (1 to 80 characters) is needed")
    if collector == "customer":
        collector_name = ""
    override_reason = " ".join((override_reason or "").split())
    if method == "override" and not (1 <= len(override_reason) <= 500):
        raise OrderError("override_reason", "a reason (1 to 500 characters) is needed")
    handover_id = handover_id or str(uuid.uuid4())
    try:
        handover_id = str(uuid.UUID(handover_id))
    except ValueError as exc:
        raise OrderError("invalid_id", "bad hand-over id") from exc
    now = clock.now_iso()
    with dbmod.write(db):
        existing = handover_record(db, handover_id)
        if existing is not None:
            if existing["order_id"] != order_id:
                raise OrderError("invalid_id", "this hand-over id belongs to another order")
            return {**existing, "repeat": True}
        if method == "override":
            require_manager(db, manager_id)
        order = require(db, order_id)
        if order["status"] in ("collected",):
            raise OrderError("already_collected", "this order was already handed over")
        if order["status"] not in READY:
            raise OrderError("invalid_state", "this order is not ready", status=order["status"])
        if method == "code" and order["code_locked"]:
            raise OrderError("code_locked", "too many wrong codes: a manager must unlock")
        remaining = {ln["line"]: ln["qty_ready"] - ln["qty_collected"] for ln in order["lines"]}
        if lines is None:
            chosen = {line: qty for line, qty in remaining.items() if qty > 0}
        else:
            chosen = {}
            for line, qty in lines.items():
                if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
                    raise OrderError("invalid_qty", "quantities are whole numbers from 0")
                if line not in remaining:
                    raise OrderError("unknown_line", "no such line in this order", line=line)
                if qty > remaining[line]:
                    raise OrderError(
                        "qty_out_of_range",
                        "more than is left to hand over",
                        line=line,
                        left=remaining[line],
                    )
                if qty:
                    chosen[line] = qty
        if not chosen:
            if not any(remaining.values()):
                raise OrderError("already_collected", "this order was already handed over")
            raise OrderError("nothing_chosen", "choose at least one item")
        for line, qty in chosen.items():
            db.execute(
                """UPDATE order_lines SET qty_collected = qty_collected + ?
                   WHERE order_id = ? AND line = ?""",
                [qty, order_id, line],
            )
        left = sum(remaining.values()) - sum(chosen.values())
        status = "collected" if left == 0 else "partially_collected"
        touch(db, order_id, status=status, collected_at=now)
        line_list = [{"line": line, "qty": qty} for line, qty in sorted(chosen.items())]
        record = {
            "id": handover_id,
            "order_id": order_id,
            "at": now,
            "staff_id": staff_id,
            "manager_id": manager_id if method == "override" else None,
            "collector": collector,
            "collector_name": collector_name,
            "method": method,
            "override_reason": override_reason if method == "override" else "",
            "lines": json.dumps(line_list),
        }
        db["handovers"].insert(record)
        payload: dict[str, Any] = {
            "handover_id": handover_id,
            "order_id": order_id,
            "lines": line_list,
            "collector": collector,
            "method": method,
            "staff": staff_id,
        }
        if collector == "proxy":
            payload["collector_name"] = collector_name
        if method == "override":
            payload["override_reason"] = override_reason
            payload["manager"] = manager_id
        outbox.enqueue(db, ORDER_HANDOVER, payload, order_id=order_id)
        staff.audit(
            db,
            staff_id,
            "order.handover",
            device,
            {
                "order_id": order_id,
                "handover_id": handover_id,
                "method": method,
                "collector": collector,
                "status": status,
                "manager": record["manager_id"],
            },
        )
    return {**record, "lines": line_list, "status": status, "repeat": False}
