"""The e-mail warning a customer that an account without contact is about to be deleted
(the 30 days' notice of app/hub/domain/retention.py), recorded for the mailer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.clock import iso, parse_iso, utcnow
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import order_people
from app.hub.domain.pii import KeyRing, PiiKeyError
from app.hub.domain.retention import Limits, Warn, years_before


def compose_warning(first_name: str | None, deleted_on: datetime) -> dict[str, str]:
    """The warning e-mail: French, then English; no link (nothing to click in a mail
    that says « sign in »: the customer goes to the shop themselves)."""
    day = deleted_on.strftime("%d/%m/%Y")
    hello = f"Bonjour {first_name}," if first_name else "Bonjour,"
    return {
        "subject": f"Votre compte sera supprimé le {day}",
        "body": (
            f"{hello}\n\n"
            "Vous n'avez ni commandé ni visité votre compte depuis bientôt 3\u00a0ans. "
            "Comme nous ne gardons pas vos données plus longtemps sans raison, votre "
            f"compte et les données personnelles qui y sont liées seront supprimés le {day}.\n"
            "Pour le garder, connectez-vous à votre compte ou passez commande avant cette "
            "date. Sinon, vos commandes passées restent dans notre comptabilité, sans votre "
            "nom ni votre adresse e-mail.\n\n"
            f"---\nYour account will be deleted on {deleted_on.strftime('%Y-%m-%d')}: no "
            "order or visit for nearly 3 years. Sign in or place an order before then to "
            "keep it."
        ),
    }


def mail_warning(ring: KeyRing, limits: Limits | None = None) -> Warn:
    """A :data:`Warn` that records the warning e-mail for the mailer (a notification of
    kind ``retention_warning``, no order), to the customer's address opened with ``ring``."""

    def warn(db: Db, customer: dict[str, Any]) -> None:
        try:
            email = ring.decrypt(customer["email_enc"], "customers.email")
            first = ring.decrypt(customer.get("first_name_enc"), "customers.first_name")
        except PiiKeyError:
            return  # no key for it: the report still names the customer
        last = parse_iso(customer["last_contact_at"])
        mail = compose_warning(first, years_after(last, (limits or Limits()).customer_years))
        hdb.insert(
            db,
            "notifications",
            {
                "order_id": None,
                "kind": "retention_warning",
                "subject": mail["subject"],
                **order_people.sealed_mail(ring, email or "", mail["body"]),  # sealed at rest
                "qr_token": None,
                "created_at": iso(utcnow()),
            },
        )

    return warn


def years_after(when: datetime, years: int) -> datetime:
    """``when`` plus ``years`` calendar years (29 February gives the 28th)."""
    return years_before(when, -years)
