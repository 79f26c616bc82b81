"""The head office's audit log: who did what in the console, the API and the CLI."""

from __future__ import annotations

import json
from typing import Any

from app.core import clock
from app.hub import database as hdb
from app.hub.database import Db


def record_audit(
    db: Db,
    actor: dict[str, Any] | None,
    action: str,
    detail: dict[str, Any] | None,
    ip: str = "",
) -> None:
    """Append to the head-office audit log (inside the caller's transaction if any).

    ``actor`` is a user (``{id, email, ...}``), a token (``{id, name, ...}``), a
    ``{id, label}`` pair, or None for the command line.
    """
    actor = actor or {}
    label = actor.get("label") or actor.get("email") or actor.get("name") or ""
    # One INSERT: no hub-wide lock of its own (inside a caller's write, part of it).
    with hdb.write(db, lock=None):
        hdb.execute(
            db,
            "INSERT INTO hq_audit (at, actor_id, actor_label, action, detail, ip) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                clock.now_iso(),
                actor.get("id"),
                str(label)[:254],
                action[:80],
                json.dumps(detail or {}, ensure_ascii=False, separators=(",", ":"), default=str),
                (ip or "")[:64],
            ],
        )


def recent_audit(db: Db, limit: int = 200, before_id: int | None = None) -> list[dict[str, Any]]:
    """The latest audit entries, newest first (``before_id`` pages back)."""
    # Two statements rather than "? IS NULL OR id < ?": PostgreSQL cannot type a NULL
    # parameter compared with nothing.
    where, params = ("", []) if before_id is None else ("WHERE id < ?", [before_id])
    rows = hdb.rows(
        db,
        "SELECT id, at, actor_id, actor_label, action, detail, ip FROM hq_audit "  # noqa: S608
        f"{where} ORDER BY id DESC LIMIT ?",
        [*params, limit],
    )
    for r in rows:
        r["detail"] = json.loads(r["detail"] or "{}")
    return rows
