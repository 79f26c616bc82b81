"""Web-shop sessions of signed-in customers, kept at the hub (issue 14).

The browser's signed cookie holds a random token; ``customer_sessions`` keeps only its
SHA-256 (a database dump does not open sessions). A session is checked on every
request, revoked on sign-out (a kept copy of the cookie then opens nothing) and ends
on its own after ``SESSION_IDLE`` unused.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from app.core.clock import iso, parse_iso, utcnow
from app.hub import database as hdb
from app.hub.database import Db

SESSION_IDLE = timedelta(days=30)
SESSION_TOUCH = timedelta(minutes=5)  # last_seen_at is rewritten at most this often


def _session_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(db: Db, customer_id: str, now: datetime | None = None) -> str:
    """A new session for the customer; returns the token the browser keeps."""
    token = secrets.token_urlsafe(32)
    stamp = iso(now or utcnow())
    with hdb.write(db):
        hdb.insert(
            db,
            "customer_sessions",
            {
                "id": _session_key(token),
                "customer_id": customer_id,
                "created_at": stamp,
                "last_seen_at": stamp,
            },
        )
    return token


def session_customer(db: Db, token: Any, now: datetime | None = None) -> dict[str, Any] | None:
    """The customer a session token opens, or None (unknown, revoked, idle too long)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    now = now or utcnow()
    row = hdb.one(
        db,
        "SELECT s.id AS session_key, s.last_seen_at, s.revoked_at, c.* FROM customer_sessions s "
        "JOIN customers c ON c.id = s.customer_id WHERE s.id = ?",
        [_session_key(token)],
    )
    if row is None or row["revoked_at"] is not None:
        return None
    seen = parse_iso(row["last_seen_at"])
    if seen + SESSION_IDLE <= now:
        return None
    if seen + SESSION_TOUCH <= now:
        with hdb.write(db, durable=False):
            hdb.execute(
                db,
                "UPDATE customer_sessions SET last_seen_at = ? WHERE id = ?",
                [iso(now), row["session_key"]],
            )
    return row


def revoke_session(db: Db, token: Any, now: datetime | None = None) -> None:
    """Sign-out: the token no longer opens anything, even if a copy of the cookie is kept."""
    if not isinstance(token, str) or len(token) > 100:
        return
    with hdb.write(db):
        hdb.execute(
            db,
            "UPDATE customer_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            [iso(now or utcnow()), _session_key(token)],
        )
