"""Messages to web customers, recorded at the hub (and e-mailed by :mod:`.mailer`).

A notification is written in the same database transaction as the change that causes
it, so it is never lost nor sent for something that did not happen; sending is done
later, outside any transaction. Texts are French first, then English.

The address a mail goes to and its body (which greets the customer by name) are kept
sealed (:mod:`.order_people`: ``customer_email_enc``, ``body_enc``, and the address's
blind index); the subject names an order number at most.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.core.clock import iso, parse_iso, utcnow
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import order_people
from app.hub.domain.order_rows import order_lines
from app.hub.domain.pii import KeyRing

KINDS = ("placed", "ready", "reminder", "expired", "returned")

READY_SUBJECT = "Votre commande est prête"
STORE_TIMEZONE = "Europe/Paris"  # the demo retailer's stores; dates are read there


def _last_day(expires_at: str | None) -> str:
    """The last day to collect, as a customer reads it: ``25/11/2026``.

    ``expires_at`` is the instant the order expires, the store's midnight that ends the
    last day, in UTC: read it in the store's time zone and step back one second.
    """
    if not expires_at:
        return ""
    local = parse_iso(expires_at).astimezone(ZoneInfo(STORE_TIMEZONE)) - timedelta(seconds=1)
    return local.strftime("%d/%m/%Y")


def _missing(n: int) -> str:
    """``1 manquant``, ``2 manquants``: the French plural, never ``manquant(s)``."""
    return f"{n} manquant" if n == 1 else f"{n} manquants"


def _lines_text(lines: list[dict[str, Any]], qty_key: str = "qty") -> str:
    return "\n".join(
        f"- {line['name_fr']} ({line['size']}, {line['colour_fr']}) × {line[qty_key]}"
        for line in lines
        if line[qty_key]
    )


def compose(order: dict[str, Any], kind: str, lines: list[dict[str, Any]], **ctx: Any) -> dict:
    """Subject, body and QR token of one notification (French, then English)."""
    number, store = order["number"], ctx.get("store_name", "")
    hello = f"Bonjour {order['customer_name']},"
    qr_token = None
    if kind == "placed":
        subject = f"Commande {number} reçue"
        body = (
            f"{hello}\n\nNous avons bien reçu votre commande {number}, à retirer chez {store}."
            f"\n\n{_lines_text(lines)}\n\nNous vous écrirons dès qu'elle sera prête.\n\n"
            f"---\nWe received your order {number}; we will write as soon as it is ready."
        )
    elif kind == "ready":
        subject = READY_SUBJECT
        qr_token = order["pickup_token"]
        short = [ln for ln in lines if ln["qty_ready"] < ln["qty"]]
        partial = ""
        if short:
            missing = "\n".join(
                f"- {ln['name_fr']} ({ln['size']}, {ln['colour_fr']})\u00a0: "
                f"{_missing(ln['qty'] - ln['qty_ready'])}"
                for ln in short
            )
            partial = (
                "\n\nCommande partielle\u00a0: certains articles n'étaient plus disponibles et "
                f"ne vous seront pas facturés.\n{missing}"
            )
        body = (
            f"{hello}\n\nVotre commande {number} est prête chez {store}.\n\n"
            f"Code de retrait\u00a0: {order['pickup_code']}\n"
            "Présentez le QR code joint ou donnez votre numéro de commande et ce code au "
            f"comptoir.\n\n{_lines_text(lines, 'qty_ready')}{partial}\n\n"
            f"---\nYour order {number} is ready for pickup. Pickup code: "
            f"{order['pickup_code']}. Show the QR code or give the order number and the code."
        )
    elif kind == "reminder":
        until = _last_day(ctx.get("expires_at"))
        subject = f"Rappel\u00a0: votre commande {number} vous attend"
        body = (
            f"{hello}\n\nVotre commande {number} vous attend chez {store}, "
            f"à retirer au plus tard le {until}.\nCode de retrait\u00a0: {order['pickup_code']}\n\n"
            f"---\nReminder: your order {number} is waiting; collect it by {until}."
        )
        qr_token = order["pickup_token"]
    elif kind == "expired":
        subject = f"Commande {number} non retirée"
        body = (
            f"{hello}\n\nVotre commande {number} n'a pas été retirée à temps\u00a0: elle est "
            "annulée et les articles non retirés vous seront remboursés.\n\n"
            f"---\nYour order {number} was not collected in time; it is cancelled and the "
            "items not collected will be refunded."
        )
    elif kind == "returned":
        refund = ctx.get("refund")
        how = (
            f"un avoir de magasin vous a été remis (code {ctx.get('credit_code')})"
            if refund == "store_credit"
            else "le remboursement sur votre moyen de paiement est en cours"
        )
        subject = f"Retour enregistré pour la commande {number}"
        body = (
            f"{hello}\n\nNous avons enregistré le retour d'articles de votre commande "
            f"{number}\u00a0; {how}.\n\n---\nWe recorded your return for order {number}."
        )
    else:
        raise ValueError(f"unknown notification kind {kind!r}")
    return {"subject": subject, "body": body, "qr_token": qr_token}


def record(
    db: Db,
    order: dict[str, Any],
    kind: str,
    now: datetime | None = None,
    ring: KeyRing | None = None,
    **ctx: Any,
) -> int:
    """Record a notification for the order's customer (inside the caller's transaction);
    the person is read from the order's sealed columns, whatever ``order`` holds."""
    ring = ring or order_people.ring_of(db)
    order = order_people.with_person(db, ring, order)
    store_name = hdb.scalar(db, "SELECT name FROM stores WHERE id = ?", [order["store_id"]])
    message = compose(order, kind, order_lines(db, order["id"]), store_name=store_name or "", **ctx)
    row = {
        "order_id": order["id"],
        "kind": kind,
        "subject": message["subject"],
        **order_people.sealed_mail(ring, order["customer_email"], message["body"]),
        "qr_token": message["qr_token"],
        "created_at": iso(now or utcnow()),
    }
    return int(hdb.insert(db, "notifications", row, returning="id"))


def for_order(db: Db, order_id: str, ring: KeyRing | None = None) -> list[dict[str, Any]]:
    """An order's notifications, oldest first, their bodies opened."""
    rows = hdb.rows(
        db,
        "SELECT id, kind, subject, body, body_enc, qr_token, created_at, sent_at, error "
        "FROM notifications WHERE order_id = ? ORDER BY id",
        [order_id],
    )
    if not any(r["body_enc"] for r in rows):
        return [{k: v for k, v in r.items() if k != "body_enc"} for r in rows]
    ring = ring or order_people.ring_of(db)
    return [
        {**{k: v for k, v in r.items() if k != "body_enc"}, "body": _body(ring, r)} for r in rows
    ]


def _body(ring: KeyRing, row: dict[str, Any]) -> str:
    return order_people.mail_of(ring, row)["body"]
