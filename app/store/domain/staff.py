"""Staff accounts: hashed PINs, roles, lockouts that grow, and the audit log.

A PIN is six digits, so it is hashed with scrypt (deliberately slow, salted) and
guessing is capped: five wrong PINs lock the account, for 30 s the first time and
twice as long each time after (at most an hour), until a right PIN resets the count.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod
from app.core.secrets import hash_secret, verify_secret
from app.core.sessions import SessionTable

PIN_LENGTH = 6
MAX_ATTEMPTS = 5
FIRST_LOCKOUT_S = 30
MAX_LOCKOUT_S = 3600
ROLES = ("staff", "manager")


class StaffError(ValueError):
    """A staff operation refused, with a stable ``code`` for the UI and tests."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.extra = extra


def check_pin_format(pin: str) -> None:
    """Raise StaffError unless ``pin`` is exactly six digits."""
    if not (isinstance(pin, str) and len(pin) == PIN_LENGTH and pin.isascii() and pin.isdigit()):
        raise StaffError("pin_format", f"a PIN is exactly {PIN_LENGTH} digits")


def add_staff(db: Database, name: str, role: str, pin: str) -> dict[str, Any]:
    """Create a staff member; the PIN is stored hashed only."""
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise StaffError("name", "a name of 1 to 60 characters is needed")
    if role not in ROLES:
        raise StaffError("role", f"role must be one of {', '.join(ROLES)}")
    check_pin_format(pin)
    row = {
        "id": "sf-" + secrets.token_hex(6),
        "name": name,
        "role": role,
        "pin_hash": hash_secret(pin),
        "created_at": clock.now_iso(),
    }
    with dbmod.write(db):
        if db.execute("SELECT 1 FROM staff WHERE name = ?", [name]).fetchone():
            raise StaffError("exists", f"there is already a staff member called {name}")
        db["staff"].insert(row)
        audit(db, None, "staff.added", "cli", {"staff_id": row["id"], "role": role})
    return {k: row[k] for k in ("id", "name", "role")}


def list_staff(db: Database) -> list[dict[str, Any]]:
    """Active staff, by name (no hashes)."""
    return db.execute_returning_dicts(
        "SELECT id, name, role FROM staff WHERE active = 1 ORDER BY name"
    )


def get_staff(db: Database, staff_id: str) -> dict[str, Any] | None:
    """One active staff member (no hash), or None."""
    rows = db.execute_returning_dicts(
        "SELECT id, name, role FROM staff WHERE id = ? AND active = 1", [staff_id]
    )
    return rows[0] if rows else None


# --- Sessions on the server (app/core/sessions.py) ------------------------------------
SESSIONS = SessionTable("staff_sessions", "staff_id", keep_s=30 * 24 * 3600)
open_session = SESSIONS.open
session_live = SESSIONS.live
revoke_session = SESSIONS.revoke
revoke_sessions = SESSIONS.revoke_all


def change_pin(db: Database, staff_id: str, pin: str, device: str = "cli") -> None:
    """Give a staff member a new PIN; every session they have open ends."""
    check_pin_format(pin)
    pin_hash = hash_secret(pin)
    with dbmod.write(db):
        if not db.execute(
            "UPDATE staff SET pin_hash = ? WHERE id = ? AND active = 1", [pin_hash, staff_id]
        ).rowcount:
            raise StaffError("unknown", "unknown staff member")
        revoke_sessions(db, staff_id)
        audit(db, staff_id, "staff.pin_changed", device)


def set_role(db: Database, staff_id: str, role: str, device: str = "cli") -> None:
    """Change a staff member's role; every session they have open ends (a manager
    made staff must not keep a manager's session)."""
    if role not in ROLES:
        raise StaffError("role", f"role must be one of {', '.join(ROLES)}")
    with dbmod.write(db):
        if not db.execute(
            "UPDATE staff SET role = ? WHERE id = ? AND active = 1", [role, staff_id]
        ).rowcount:
            raise StaffError("unknown", "unknown staff member")
        revoke_sessions(db, staff_id)
        audit(db, staff_id, "staff.role_changed", device, {"role": role})


def _lockout_seconds(lockouts: int) -> int:
    return min(FIRST_LOCKOUT_S * 2 ** max(lockouts - 1, 0), MAX_LOCKOUT_S)


def login(db: Database, staff_id: str, pin: str, device: str = "") -> dict[str, Any]:
    """Check a PIN; return the staff member, or raise StaffError (pin_format,
    unknown, locked with ``retry_in_s``, wrong_pin with ``attempts_left``)."""
    check_pin_format(pin)
    now = clock.utcnow()
    # The PIN is checked inside the write lock: two tablets guessing at once are
    # counted one after the other, never both against the same count. Refusals are
    # raised after the commit, so the count, the lock and the audit entry stick.
    with dbmod.write(db):
        rows = db.execute_returning_dicts(
            "SELECT * FROM staff WHERE id = ? AND active = 1", [staff_id]
        )
        if not rows:
            raise StaffError("unknown", "unknown staff member")
        member = rows[0]
        locked_until = member["locked_until"] and clock.parse_iso(member["locked_until"])
        if locked_until and locked_until > now:
            audit(db, staff_id, "login.refused_locked", device)
            wait = int((locked_until - now).total_seconds()) + 1
            error = StaffError("locked", "too many wrong PINs", retry_in_s=wait)
        elif verify_secret(pin, member["pin_hash"]):
            db.execute(
                "UPDATE staff SET failed_attempts = 0, lockouts = 0, locked_until = NULL "
                "WHERE id = ?",
                [staff_id],
            )
            audit(db, staff_id, "login", device)
            return {k: member[k] for k in ("id", "name", "role")}
        else:
            error = _count_failure(db, member, now, device)
    raise error


def _count_failure(db: Database, member: dict[str, Any], now: datetime, device: str) -> StaffError:
    staff_id = member["id"]
    failed = member["failed_attempts"] + 1
    if failed >= MAX_ATTEMPTS:
        lockouts = member["lockouts"] + 1
        seconds = _lockout_seconds(lockouts)
        db.execute(
            "UPDATE staff SET failed_attempts = 0, lockouts = ?, locked_until = ? WHERE id = ?",
            [lockouts, clock.iso(now + timedelta(seconds=seconds)), staff_id],
        )
        # Someone is guessing this PIN: sessions open under it end too.
        revoke_sessions(db, staff_id)
        audit(db, staff_id, "login.locked", device, {"lockouts": lockouts})
        return StaffError("locked", "too many wrong PINs", retry_in_s=seconds)
    db.execute("UPDATE staff SET failed_attempts = ? WHERE id = ?", [failed, staff_id])
    audit(db, staff_id, "login.wrong_pin", device, {"failed": failed})
    return StaffError("wrong_pin", "wrong PIN", attempts_left=MAX_ATTEMPTS - failed)


def audit(
    db: Database,
    staff_id: str | None,
    action: str,
    device: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Append to the audit log (inside the caller's transaction when there is one)."""
    db.execute(
        "INSERT INTO audit_log (at, staff_id, device, action, details) VALUES (?, ?, ?, ?, ?)",
        [clock.now_iso(), staff_id, device[:120], action, json.dumps(details or {})],
    )


def recent_audit(db: Database, limit: int = 100) -> list[dict[str, Any]]:
    """The latest audit entries with the staff member's name."""
    return db.execute_returning_dicts(
        """SELECT a.at, a.action, a.device, a.details, s.name AS staff_name
           FROM audit_log a LEFT JOIN staff s ON s.id = a.staff_id
           ORDER BY a.id DESC LIMIT ?""",
        [limit],
    )
