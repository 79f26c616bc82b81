"""Preparing an order: the picking list, scanning each unit into it, marking a line
short, and putting the order ready on a shelf slot (``order.ready`` for the hub).

Every action is one write transaction (``BEGIN IMMEDIATE``) that changes the order,
appends to the audit log and queues what the hub must learn in the outbox.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from app.core import catalog, clock
from app.core import db as dbmod
from app.core.protocol import ORDER_READY
from app.store.domain import outbox, staff
from app.store.domain.orders.calendar import Calendar
from app.store.domain.orders.queries import require
from app.store.domain.orders.status import OrderError, touch


def picking_list(db: Database, order_id: str, lang: str = "fr") -> list[dict[str, Any]]:
    """The order's lines grouped by category (in the store's category order)."""
    order = require(db, order_id)
    names = {
        r[0]: r[1]
        for r in db.execute(
            f"SELECT slug, {'name_en' if lang == 'en' else 'name_fr'} FROM categories"  # noqa: S608
        ).fetchall()
    }
    positions = {r[0]: r[1] for r in db.execute("SELECT slug, position FROM categories").fetchall()}
    groups: dict[str, dict[str, Any]] = {}
    for line in order["lines"]:
        slug = line["category_slug"]
        g = groups.setdefault(slug, {"slug": slug, "name": names.get(slug, slug), "lines": []})
        g["lines"].append(line)
    return sorted(groups.values(), key=lambda g: (positions.get(g["slug"], 999), g["name"]))


def _preparable(order: dict[str, Any]) -> None:
    if order["status"] not in ("placed", "preparing"):
        raise OrderError(
            "invalid_state", "this order is not being prepared", status=order["status"]
        )


def scan_item(db: Database, order_id: str, code: str, staff_id: str, device: str = "") -> dict:
    """Count one scanned unit into the order: refuse a product not ordered or one too many.

    Returns ``{"line": …, "picked": n, "qty": n, "complete": bool}``.
    """
    code = (code or "").strip()[:64]
    if not code:
        raise OrderError("empty_code", "nothing was scanned")
    variant = catalog.find_variant(db, code)
    if variant is None:
        raise OrderError("unknown_item", "no product has this barcode", scanned=code)
    wrong = None
    with dbmod.write(db):
        order = require(db, order_id)
        _preparable(order)
        candidates = [ln for ln in order["lines"] if ln["sku"] == variant["sku"]]
        if not candidates:
            staff.audit(
                db,
                staff_id,
                "order.scan_wrong_item",
                device,
                {"order_id": order_id, "sku": variant["sku"]},
            )
            wrong = OrderError("wrong_item", "this product is not in the order", sku=variant["sku"])
        else:
            line = next((ln for ln in candidates if ln["qty_picked"] < ln["qty"]), None)
            if line is None:
                raise OrderError(
                    "too_many", "every unit of this product is already picked", sku=variant["sku"]
                )
            picked = line["qty_picked"] + 1
            db.execute(
                "UPDATE order_lines SET qty_picked = ?, short = 0 WHERE order_id = ? AND line = ?",
                [picked, order_id, line["line"]],
            )
            if order["status"] == "placed":
                touch(db, order_id, status="preparing")
            staff.audit(
                db,
                staff_id,
                "order.scan",
                device,
                {"order_id": order_id, "line": line["line"], "picked": picked},
            )
    if wrong is not None:
        raise wrong  # after the commit, so the audit entry of the refused scan stays
    line["qty_picked"] = picked
    return {"line": line, "picked": picked, "qty": line["qty"], "complete": picked == line["qty"]}


def mark_short(db: Database, order_id: str, line: int, staff_id: str, device: str = "") -> None:
    """Say a line cannot be completed: the order will be ready with what was picked."""
    with dbmod.write(db):
        order = require(db, order_id)
        _preparable(order)
        found = next((ln for ln in order["lines"] if ln["line"] == line), None)
        if found is None:
            raise OrderError("unknown_line", "no such line in this order")
        if found["qty_picked"] >= found["qty"]:
            raise OrderError("line_complete", "this line is complete")
        db.execute(
            "UPDATE order_lines SET short = 1 WHERE order_id = ? AND line = ?", [order_id, line]
        )
        if order["status"] == "placed":
            touch(db, order_id, status="preparing")
        staff.audit(db, staff_id, "order.short", device, {"order_id": order_id, "line": line})


def mark_ready(
    db: Database, order_id: str, shelf_slot: str, staff_id: str, device: str = ""
) -> dict[str, Any]:
    """Every line picked or marked short: the order is ready on ``shelf_slot``.

    Queues ``order.ready`` (the hub tells the customer) in the same transaction.
    """
    slot = " ".join((shelf_slot or "").split())
    if not slot or len(slot) > 20:
        raise OrderError("shelf_slot", "a shelf slot of 1 to 20 characters is needed")
    now = clock.utcnow()
    with dbmod.write(db):
        order = require(db, order_id)
        _preparable(order)
        open_lines = [
            ln["line"] for ln in order["lines"] if ln["qty_picked"] < ln["qty"] and not ln["short"]
        ]
        if open_lines:
            raise OrderError(
                "incomplete", "some lines are neither picked nor short", lines=open_lines
            )
        if not any(ln["qty_picked"] for ln in order["lines"]):
            raise OrderError("nothing_picked", "nothing was picked")
        full = all(ln["qty_picked"] == ln["qty"] for ln in order["lines"])
        status = "ready" if full else "ready_partial"
        db.execute("UPDATE order_lines SET qty_ready = qty_picked WHERE order_id = ?", [order_id])
        expires = Calendar(db).expires_at(now, order["expiry_days"])
        touch(
            db,
            order_id,
            status=status,
            shelf_slot=slot,
            ready_at=clock.iso(now),
            expires_at=clock.iso(expires),
            reminder_queued=0,
        )
        outbox.enqueue(
            db,
            ORDER_READY,
            {
                "order_id": order_id,
                "lines": [
                    {"line": ln["line"], "qty_ready": ln["qty_picked"]} for ln in order["lines"]
                ],
                "shelf_slot": slot,
                "staff": staff_id,
            },
            order_id=order_id,
        )
        staff.audit(
            db,
            staff_id,
            "order.ready",
            device,
            {"order_id": order_id, "status": status, "shelf_slot": slot},
        )
    return require(db, order_id)
