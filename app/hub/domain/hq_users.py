"""Head-office users, API tokens and the audit log (domain code, no Flask).

Users log in to the console (``/hq``) with an e-mail and a password, stored as a scrypt
hash (:func:`app.core.secrets.hash_secret`). Five wrong passwords lock the account, for
30 s the first time and twice as long each time after (at most an hour), until a right
password resets the count: that is the login's rate limit. A failed login never says
whether the e-mail exists: unknown, disabled, locked and wrong all look the same, and
all cost one scrypt, so neither the answer nor its timing tells them apart.

Roles: ``marketing`` (promotions), ``operations`` (the fleet), ``admin`` (everything,
including users). Head-office tools use bearer tokens with a role of their own.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from app.core import clock
from app.core.secrets import hash_secret, verify_secret
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import hq_audit

ROLES = ("marketing", "operations", "admin")
MAX_ATTEMPTS = 5
FIRST_LOCKOUT_S = 30
MAX_LOCKOUT_S = 3600
PASSWORD_MIN = 10
PASSWORD_MAX = 200
TOKEN_PREFIX = "hqt_"
# A token's last use is written at most this often: an API client polling every second
# must not turn every read into a write.
TOKEN_TOUCH_S = 60

# Verified against when the e-mail is unknown, so that case costs one scrypt too.
_DUMMY_HASH = hash_secret(secrets.token_urlsafe(16))

_PUBLIC = ("id", "email", "name", "role", "created_at", "disabled")


class HqError(ValueError):
    """A head-office operation refused, with a stable ``code`` for the UI and tests."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def normalize_email(email: str) -> str:
    """E-mails compare case-insensitively and without surrounding spaces."""
    return (email or "").strip().lower()


def _check_password(password: str) -> None:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise HqError(
            "password", f"a password of {PASSWORD_MIN} to {PASSWORD_MAX} characters is needed"
        )


def _public(row: dict[str, Any]) -> dict[str, Any]:
    user = {k: row[k] for k in _PUBLIC}
    user["disabled"] = bool(user["disabled"])
    return user


def add_user(db: Db, email: str, name: str, role: str, password: str) -> dict[str, Any]:
    """Create a head-office user (password stored hashed only); return it without hash."""
    email = normalize_email(email)
    name = (name or "").strip()
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise HqError("email", "a valid e-mail address is needed")
    if not name or len(name) > 80:
        raise HqError("name", "a name of 1 to 80 characters is needed")
    if role not in ROLES:
        raise HqError("role", f"role must be one of {', '.join(ROLES)}")
    _check_password(password)
    row = {
        "id": "hu-" + secrets.token_hex(6),
        "email": email,
        "name": name,
        "role": role,
        "password_hash": hash_secret(password),
        "created_at": clock.now_iso(),
        "disabled": 0,
    }
    with hdb.write(db):
        if hdb.scalar(db, "SELECT 1 FROM hq_users WHERE email = ?", [email]) is not None:
            raise HqError("exists", f"there is already a user with the e-mail {email}")
        hdb.insert(db, "hq_users", row)
    return _public(row)


def get_user(db: Db, user_id: str) -> dict[str, Any] | None:
    """One user (no hash), enabled or not, or None."""
    row = hdb.one(db, "SELECT * FROM hq_users WHERE id = ?", [user_id])
    return _public(row) if row else None


def list_users(db: Db) -> list[dict[str, Any]]:
    """Every user, enabled first, by name (no hashes)."""
    rows = hdb.rows(db, "SELECT * FROM hq_users ORDER BY disabled, name, email")
    return [_public(r) for r in rows]


def set_disabled(db: Db, user_id: str, disabled: bool) -> bool:
    """Disable (or enable again) a user; a disabled user's sessions stop at once (and
    are not back when the user is enabled again)."""
    with hdb.write(db):
        changed = (
            hdb.execute(
                db, "UPDATE hq_users SET disabled = ? WHERE id = ?", [int(disabled), user_id]
            ).rowcount
            == 1
        )
        if changed and disabled:
            revoke_sessions(db, user_id)
        return changed


# --- Console sessions on the server ---------------------------------------------------
# The store's staff sessions (app/core/sessions.py) work the same way on its SQLite
# file; these are written through app/hub/database.py so they run on PostgreSQL too.
# Each is one statement, atomic by itself: none takes the hub-wide write lock (inside a
# caller's write transaction they are part of it).
# Rows are forgotten after a day (a console session lasts 12 h at most).
SESSION_KEEP_S = 24 * 3600


def open_session(db: Db, user_id: str) -> str:
    """A new live console session for ``user_id``; its id goes in the signed cookie."""
    session_id = secrets.token_urlsafe(24)
    now = clock.utcnow()
    with hdb.write(db, lock=None):
        hdb.execute(
            db,
            "DELETE FROM hq_sessions WHERE created_at < ?",
            [clock.iso(now - timedelta(seconds=SESSION_KEEP_S))],
        )
        hdb.insert(
            db,
            "hq_sessions",
            {"id": session_id, "user_id": user_id, "created_at": clock.iso(now)},
        )
    return session_id


def session_live(db: Db, session_id: object, user_id: str) -> bool:
    """Whether ``session_id`` (from a cookie: anything) is a live session of ``user_id``."""
    if not isinstance(session_id, str) or not session_id or len(session_id) > 64:
        return False
    return (
        hdb.scalar(
            db,
            "SELECT 1 FROM hq_sessions WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
            [session_id, user_id],
        )
        is not None
    )


def revoke_session(db: Db, session_id: object) -> None:
    """End one session (a logout on this device)."""
    if isinstance(session_id, str) and session_id:
        with hdb.write(db, lock=None):
            hdb.execute(
                db,
                "UPDATE hq_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                [clock.now_iso(), session_id],
            )


def revoke_sessions(db: Db, user_id: str) -> int:
    """End every session of ``user_id`` (inside the caller's transaction if any)."""
    with hdb.write(db, lock=None):
        return hdb.execute(
            db,
            "UPDATE hq_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
            [clock.now_iso(), user_id],
        ).rowcount


def set_password(db: Db, user_id: str, password: str) -> bool:
    """Give a user a new password; every console session they have open ends."""
    _check_password(password)
    password_hash = hash_secret(password)
    with hdb.write(db):
        if not hdb.execute(
            db, "UPDATE hq_users SET password_hash = ? WHERE id = ?", [password_hash, user_id]
        ).rowcount:
            return False
        revoke_sessions(db, user_id)
    return True


def set_role(db: Db, user_id: str, role: str) -> bool:
    """Change a user's role; every console session they have open ends (an admin made
    marketing must not keep an admin's session)."""
    if role not in ROLES:
        raise HqError("role", f"role must be one of {', '.join(ROLES)}")
    with hdb.write(db):
        if not hdb.execute(
            db, "UPDATE hq_users SET role = ? WHERE id = ?", [role, user_id]
        ).rowcount:
            return False
        revoke_sessions(db, user_id)
    return True


def check_roles(roles: tuple[str, ...]) -> None:
    """Raise ValueError for a role name that does not exist (a typo in a decorator)."""
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"unknown head-office role {role!r}")


def _lockout_seconds(lockouts: int) -> int:
    return min(FIRST_LOCKOUT_S * 2 ** max(lockouts - 1, 0), MAX_LOCKOUT_S)


def authenticate(
    db: Db, email: str, password: str, ip: str = "", now: datetime | None = None
) -> dict[str, Any] | None:
    """The user whose e-mail and password these are, or None (same answer, same cost,
    whether the e-mail is unknown, the account disabled or locked, or the password wrong).

    Every attempt is written to the audit log; five wrong passwords lock the account.
    """
    email = normalize_email(email)
    password = password if isinstance(password, str) else ""
    moment = now or clock.utcnow()
    stored = hdb.scalar(db, "SELECT password_hash FROM hq_users WHERE email = ?", [email])
    stored = stored or _DUMMY_HASH
    # Always one scrypt, even when the answer is already known to be "no". Outside the
    # write lock: ~60 ms of hashing must not hold up every store's signed request.
    matches = verify_secret(password[:PASSWORD_MAX], stored)
    # The account's state is read again under the write lock: two guesses at once are
    # counted one after the other, never both against the same count.
    with hdb.write(db):
        user = hdb.one(db, "SELECT * FROM hq_users WHERE email = ?", [email])
        if user is None:
            hq_audit.record_audit(db, None, "login.failed", {"email": email[:254]}, ip)
            return None
        matches = matches and user["password_hash"] == stored  # not changed meanwhile
        actor = {"id": user["id"], "label": user["email"]}
        locked_until = user["locked_until"] and clock.parse_iso(user["locked_until"])
        if user["disabled"]:
            hq_audit.record_audit(db, actor, "login.refused_disabled", {}, ip)
            return None
        if locked_until and locked_until > moment:
            hq_audit.record_audit(db, actor, "login.refused_locked", {}, ip)
            return None
        if matches:
            hdb.execute(
                db,
                "UPDATE hq_users SET failed_attempts = 0, lockouts = 0, locked_until = NULL "
                "WHERE id = ?",
                [user["id"]],
            )
            hq_audit.record_audit(db, actor, "login", {}, ip)
            return _public(user)
        failed = user["failed_attempts"] + 1
        if failed >= MAX_ATTEMPTS:
            lockouts = user["lockouts"] + 1
            seconds = _lockout_seconds(lockouts)
            hdb.execute(
                db,
                "UPDATE hq_users SET failed_attempts = 0, lockouts = ?, locked_until = ? "
                "WHERE id = ?",
                [lockouts, clock.iso(moment + timedelta(seconds=seconds)), user["id"]],
            )
            # Someone is guessing this password: sessions open under it end too.
            revoke_sessions(db, user["id"])
            hq_audit.record_audit(
                db, actor, "login.locked", {"lockouts": lockouts, "seconds": seconds}, ip
            )
        else:
            hdb.execute(
                db, "UPDATE hq_users SET failed_attempts = ? WHERE id = ?", [failed, user["id"]]
            )
            hq_audit.record_audit(db, actor, "login.wrong_password", {"failed": failed}, ip)
    return None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Db, name: str, role: str) -> str:
    """Make an API token for a head-office tool; return it in clear, this once only.

    Only its SHA-256 is stored. A password needs a slow, salted hash because people
    choose guessable ones; this token is 32 random bytes (256 bits), so no dictionary
    or brute force can find it from its hash, and a fast hash lets every API request
    look the token up by its hash through an index instead of trying scrypt on each row.
    """
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise HqError("name", "a name of 1 to 80 characters is needed")
    if role not in ROLES:
        raise HqError("role", f"role must be one of {', '.join(ROLES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = {
        "id": "ht-" + secrets.token_hex(6),
        "name": name,
        "token_hash": _token_hash(token),
        "role": role,
        "created_at": clock.now_iso(),
    }
    with hdb.write(db):
        hdb.insert(db, "hq_tokens", row)
    return token


def check_token(db: Db, token: str, now: datetime | None = None) -> dict[str, Any] | None:
    """``{id, name, role}`` of a live (not revoked) token, or None."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    # Looked up by hash: timing can at most tell an attacker about SHA-256 outputs of
    # their own guesses, which says nothing about a real token.
    row = hdb.one(
        db,
        "SELECT id, name, role, last_used_at FROM hq_tokens "
        "WHERE token_hash = ? AND revoked_at IS NULL",
        [_token_hash(token)],
    )
    if row is None:
        return None
    moment = now or clock.utcnow()
    last = row["last_used_at"] and clock.parse_iso(row["last_used_at"])
    if not last or (moment - last).total_seconds() >= TOKEN_TOUCH_S:
        with hdb.write(db, lock=None):  # one UPDATE: atomic without the hub-wide lock
            hdb.execute(
                db,
                "UPDATE hq_tokens SET last_used_at = ? WHERE id = ?",
                [clock.iso(moment), row["id"]],
            )
    return {"id": row["id"], "name": row["name"], "role": row["role"]}


def revoke_token(db: Db, token_id: str) -> bool:
    """Revoke a token by id; it stops working at once."""
    with hdb.write(db):
        return (
            hdb.execute(
                db,
                "UPDATE hq_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                [clock.now_iso(), token_id],
            ).rowcount
            == 1
        )


def list_tokens(db: Db) -> list[dict[str, Any]]:
    """Every token (never its hash), newest first."""
    return hdb.rows(
        db,
        "SELECT id, name, role, created_at, last_used_at, revoked_at FROM hq_tokens "
        "ORDER BY created_at DESC, id",
    )
