"""Applying the hub's ``order`` changes (a feed applier, app/store/sync/feed.py): web
orders arrive here, and the hub's view of them comes back after each staff action.

A store holds only what its counter needs (issue 14, RGPD): the customer's first name,
never their surname or e-mail. The hub sends the first name alone in
``customer_name``; an older hub sent the whole name and the e-mail, so this applier
keeps the first word of the name only and drops any e-mail, whatever the hub sends.
The first name itself is forgotten some days after the order is closed
(app/store/domain/forgetting.py)."""

from __future__ import annotations

from sqlite_utils import Database

from app.core import clock
from app.store.domain.orders.calendar import Calendar
from app.store.domain.orders.queries import customer_key, get_order
from app.store.domain.orders.status import RANK, READY

MAX_FIRST_NAME = 60

_LINE_TEXT = (
    "sku",
    "ean",
    "name_fr",
    "name_en",
    "size",
    "colour_fr",
    "colour_en",
    "category_slug",
    "qty",
    "price_cents",
)


def first_name_only(name: str | None) -> str:
    """The first word of a name as the hub sent it ("Inès Roux" -> "Inès"), or ''."""
    words = (name or "").split()
    return words[0][:MAX_FIRST_NAME] if words else ""


def first_initial(first: str) -> str:
    """The initial printed on a ticket and shown while preparing: of the first name."""
    return f"{first[0].upper()}." if first else ""


def _int(value: object) -> int:
    """A whole number the hub sent, 0 when absent or not one."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _pending_for(db: Database, order_id: str) -> bool:
    return (
        db.execute(
            """SELECT 1 FROM outbox WHERE order_id = ? AND acked_at IS NULL
               AND parked_reason IS NULL LIMIT 1""",
            [order_id],
        ).fetchone()
        is not None
    )


def apply_order_changes(db: Database, changes: list[dict], own: str | None) -> int:
    """Upsert ``order`` changes (feed applier; inside the page's transaction).

    An order never moves backwards here; while the store has transactions about it the
    hub has not acknowledged, the store keeps its own status and counters and takes
    only the other fields (names, promised time, code hash…).
    """
    cal: Calendar | None = None
    now = clock.utcnow()
    stamp = clock.iso(now)
    for change in changes:
        d = change["data"]
        if own and d.get("store_id") and d["store_id"] != own:
            continue  # not ours: the hub should not send it, never apply it
        order_id = d["id"]
        status = d["status"]
        if status not in RANK:
            raise ValueError(f"unknown order status {status!r}")
        local = get_order(db, order_id)
        keep_local = local is not None and (
            _pending_for(db, order_id) or RANK[status] < RANK[local["status"]]
        )
        first = first_name_only(d.get("customer_name"))
        account = d.get("customer_id") or None
        if local is not None and local["forgotten_at"]:
            first, account = "", None  # forgotten once closed: a late page never brings it back
        fields = {
            "number": d["number"],
            "customer_name": first,
            "customer_key": customer_key(first),
            "customer_email": "",  # never kept, even when an older hub sends it
            "customer_initials": first_initial(first),
            "customer_id": account,  # the account, for the counter
            "placed_at": d["placed_at"],
            "promised_at": d.get("promised_at") or d["placed_at"],
            "expiry_days": int(d.get("expiry_days") or 7),
            "pickup_code_hash": d.get("pickup_code_hash") or "",
            "revision": int(d.get("revision") or 0),
            "updated_at": stamp,
            # Store credit used online (the amount only) and what the lines cost: the
            # hand-over page says what is left to pay.
            "credit_cents": max(0, _int(d.get("credit_cents"))),
            "total_cents": sum(
                _int(ln.get("qty")) * _int(ln.get("price_cents")) - _int(ln.get("discount_cents"))
                for ln in d.get("lines") or []
            ),
        }
        new_status = local["status"] if keep_local else status
        if not keep_local:
            fields["status"] = status
            if d.get("shelf_slot"):
                fields["shelf_slot"] = str(d["shelf_slot"])[:20]
        ready_at = local["ready_at"] if local else None
        if new_status in READY and not ready_at:
            ready_at = d.get("ready_at") or stamp
            fields["ready_at"] = ready_at
        if ready_at and new_status in READY:
            cal = cal or Calendar(db)
            fields["expires_at"] = clock.iso(
                cal.expires_at(clock.parse_iso(ready_at), fields["expiry_days"])
            )
        if local is None:
            db["orders"].insert({"id": order_id, "status": status, **fields})
        else:
            sets = ", ".join(f"{k} = ?" for k in fields)
            db.execute(
                f"UPDATE orders SET {sets} WHERE id = ?",  # noqa: S608
                [*fields.values(), order_id],
            )
        local_lines = {ln["line"]: ln for ln in (local or {}).get("lines", [])}
        for ln in d.get("lines") or []:
            text = {k: ln.get(k) if ln.get(k) is not None else "" for k in _LINE_TEXT}
            text["qty"] = int(ln["qty"])
            text["price_cents"] = int(ln.get("price_cents") or 0)
            mine = local_lines.get(ln["line"])
            hub_ready = int(ln.get("qty_ready") or 0)
            counters = {
                "qty_ready": hub_ready,
                "qty_collected": int(ln.get("qty_collected") or 0),
                "qty_returned": int(ln.get("qty_returned") or 0),
            }
            if mine is not None:
                if keep_local:
                    counters = {k: mine[k] for k in counters}
                else:
                    counters["qty_collected"] = max(
                        counters["qty_collected"], mine["qty_collected"]
                    )
                    counters["qty_returned"] = max(counters["qty_returned"], mine["qty_returned"])
            picked = max(mine["qty_picked"] if mine else 0, counters["qty_ready"])
            db.execute(
                """INSERT INTO order_lines (order_id, line, sku, ean, name_fr, name_en, size,
                       colour_fr, colour_en, category_slug, qty, price_cents, qty_picked,
                       qty_ready, qty_collected, qty_returned)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (order_id, line) DO UPDATE SET sku = excluded.sku,
                       ean = excluded.ean, name_fr = excluded.name_fr,
                       name_en = excluded.name_en, size = excluded.size,
                       colour_fr = excluded.colour_fr, colour_en = excluded.colour_en,
                       category_slug = excluded.category_slug, qty = excluded.qty,
                       price_cents = excluded.price_cents, qty_picked = excluded.qty_picked,
                       qty_ready = excluded.qty_ready, qty_collected = excluded.qty_collected,
                       qty_returned = excluded.qty_returned""",
                [order_id, int(ln["line"]), *text.values(), picked, *counters.values()],
            )
    return len(changes)
