"""Consent to personal suggestions (issue 14, RGPD): opt-in, revocable, journaled.

Nothing personal is shown or computed for a customer unless :func:`personal_allowed`
says so: every personal feature (suggestions, sizes remembered, "seen online", targeted
offers) calls it first. Consent is off by default (``customers.consent_personal`` is 0
from migration m010). Giving or withdrawing it sets ``consent_personal`` and
``consent_at`` and appends a row to ``customer_consent_log`` (given or not, when, on
which channel: ``web`` for Mon compte, ``kiosk`` for a revocation a store queued).
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from typing import Any

from app.core.clock import iso, utcnow
from app.hub import database as hdb
from app.hub.database import Db

CHANNELS = ("web", "kiosk")


def personal_allowed(db: Db, customer_id: str | None) -> bool:
    """Whether this customer gave, and has not withdrawn, consent to personal features."""
    if not customer_id:
        return False
    row = hdb.one(db, "SELECT consent_personal FROM customers WHERE id = ?", [customer_id])
    return bool(row and row["consent_personal"])


def set_consent(
    db: Db,
    customer_id: str,
    given: bool,
    channel: str = "web",
    *,
    store_id: str | None = None,
    now: datetime | str | None = None,
) -> bool:
    """Give or withdraw consent; journaled. Whether it changed (the same answer twice
    is not journaled again). Inside the caller's write transaction if any."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}")
    stamp = now if isinstance(now, str) else iso(now or utcnow())
    with hdb.write(db):
        row = hdb.one(db, "SELECT consent_personal FROM customers WHERE id = ?", [customer_id])
        if row is None or bool(row["consent_personal"]) == bool(given):
            return False
        hdb.execute(
            db,
            "UPDATE customers SET consent_personal = ?, consent_at = ? WHERE id = ?",
            [1 if given else 0, stamp, customer_id],
        )
        hdb.insert(
            db,
            "customer_consent_log",
            {
                # Sorts in the order written (two changes in one clock tick included).
                "id": f"csl_{time.time_ns():020d}{secrets.token_hex(4)}",
                "customer_id": customer_id,
                "given": 1 if given else 0,
                "at": stamp,
                "channel": channel,
                "store_id": store_id,
            },
        )
    return True


def history(db: Db, customer_id: str) -> list[dict[str, Any]]:
    """The customer's consent changes, newest first."""
    return hdb.rows(
        db,
        "SELECT given, at, channel, store_id FROM customer_consent_log "
        "WHERE customer_id = ? ORDER BY at DESC, id DESC",
        [customer_id],
    )
