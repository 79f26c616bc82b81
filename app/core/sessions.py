"""Sessions kept on the server, for store staff and head office alike.

The signed cookie only names a session; whether it is still live is decided here, on
every request, so ending one (a logout, a new PIN or password, a role change, a lockout)
works even where a copy of the cookie lives on.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod


@dataclass(frozen=True)
class SessionTable:
    """One table of sessions: ``id``, the owner column, ``created_at``, ``revoked_at``.

    ``table`` and ``owner`` are names written in our code, never input: the SQL below
    is built from them on purpose.
    """

    table: str
    owner: str
    keep_s: int  # a row (live or revoked) is forgotten after this long

    def open(self, db: Database, owner_id: str) -> str:
        """A new live session for ``owner_id``; its id goes in the signed cookie."""
        session_id = secrets.token_urlsafe(24)
        now = clock.utcnow()
        with dbmod.write(db):
            db.execute(
                f"DELETE FROM {self.table} WHERE created_at < ?",  # noqa: S608
                [clock.iso(now - timedelta(seconds=self.keep_s))],
            )
            db.execute(
                f"INSERT INTO {self.table} (id, {self.owner}, created_at) VALUES (?, ?, ?)",  # noqa: S608
                [session_id, owner_id, clock.iso(now)],
            )
        return session_id

    def live(self, db: Database, session_id: object, owner_id: str) -> bool:
        """Whether ``session_id`` (from a cookie: anything) is a live session of ``owner_id``."""
        if not isinstance(session_id, str) or not session_id or len(session_id) > 64:
            return False
        row = db.execute(
            f"SELECT 1 FROM {self.table} WHERE id = ? AND {self.owner} = ?"  # noqa: S608
            " AND revoked_at IS NULL",
            [session_id, owner_id],
        ).fetchone()
        return row is not None

    def revoke(self, db: Database, session_id: object) -> None:
        """End one session (a logout on this device)."""
        if isinstance(session_id, str) and session_id:
            with dbmod.write(db):
                db.execute(
                    f"UPDATE {self.table} SET revoked_at = ?"  # noqa: S608
                    " WHERE id = ? AND revoked_at IS NULL",
                    [clock.now_iso(), session_id],
                )

    def revoke_all(self, db: Database, owner_id: str) -> int:
        """End every session of ``owner_id`` (inside the caller's transaction if any)."""
        with dbmod.write(db):
            return db.execute(
                f"UPDATE {self.table} SET revoked_at = ?"  # noqa: S608
                f" WHERE {self.owner} = ? AND revoked_at IS NULL",
                [clock.now_iso(), owner_id],
            ).rowcount
