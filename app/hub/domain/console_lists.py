"""The console's long lists a page at a time (domain code, no Flask): the audit log
filtered by who and by action, and the promotions by state (phase).

A year of a chain's audit log is tens of thousands of entries and its promotions
hundreds: each page is a ``count(*)`` and a ``LIMIT``/``OFFSET`` over indexes (the audit
log by actor and by action, promotions by last change: app/hub/migrations.py m009).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.core import clock
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain.listing import PAGE_SIZE, Page, paginate

#: The ``actor`` filter's value for entries with no user or token behind them (the
#: command line, failed logins of unknown e-mails).
NO_ACTOR = "-"

# A promotion's phase (app.hub.domain.promotions.phase) in SQL: instants are ISO text.
_PHASE = (
    "CASE WHEN status <> 'published' THEN status WHEN starts_at > ? THEN 'scheduled' "
    "WHEN ends_at <= ? THEN 'ended' ELSE 'live' END"
)
_PHASE_WHERE = {
    "draft": ("status = 'draft'", 0),
    "unpublished": ("status = 'unpublished'", 0),
    "scheduled": ("status = 'published' AND starts_at > ?", 1),
    "ended": ("status = 'published' AND ends_at <= ?", 1),
    "live": ("status = 'published' AND starts_at <= ? AND ends_at > ?", 2),
}


def audit_page(
    db: Db,
    wanted: int,
    *,
    actor: str | None = None,
    action: str | None = None,
    before_id: int | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """Audit entries, newest first: by ``actor`` (a user or token id, or :data:`NO_ACTOR`),
    by ``action``, older than ``before_id``; page ``wanted`` (the last if past it)."""
    where, params = ["1 = 1"], []
    if actor == NO_ACTOR:
        where.append("actor_id IS NULL")
    elif actor:
        where.append("actor_id = ?")
        params.append(actor)
    if action:
        where.append("action = ?")
        params.append(action)
    if before_id is not None:
        where.append("id < ?")
        params.append(before_id)
    clause = " AND ".join(where)
    total = int(hdb.scalar(db, f"SELECT count(*) FROM hq_audit WHERE {clause}", params))  # noqa: S608
    number, offset = paginate(total, wanted, size)
    rows = hdb.rows(
        db,
        "SELECT id, at, actor_id, actor_label, action, detail, ip FROM hq_audit "  # noqa: S608
        f"WHERE {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, size, offset],
    )
    for r in rows:
        try:
            detail = json.loads(r["detail"] or "{}")
        except ValueError:
            detail = {}
        r["detail"] = detail if isinstance(detail, dict) else {"": detail}
    return Page(rows, total, number, size)


def audit_actions(db: Db) -> list[str]:
    """Every action the log holds, in order: a walk of the (action, id) index, one step
    per distinct action (a "loose index scan"), not a read of the whole log."""
    rows = hdb.execute(
        db,
        "WITH RECURSIVE a(action) AS (SELECT min(action) FROM hq_audit UNION ALL "
        "SELECT (SELECT min(h.action) FROM hq_audit h WHERE h.action > a.action) "
        "FROM a WHERE a.action IS NOT NULL) SELECT action FROM a WHERE action IS NOT NULL",
    ).fetchall()
    return [r[0] for r in rows]


def promotion_counts(db: Db, now: datetime | None = None) -> dict[str, int]:
    """How many promotions are in each phase (draft, scheduled, live, ended,
    unpublished) as of ``now``."""
    stamp = clock.iso(now or clock.utcnow())
    rows = hdb.execute(
        db,
        f"SELECT phase, count(*) FROM (SELECT {_PHASE} AS phase FROM promotions) t "  # noqa: S608
        "GROUP BY phase",
        [stamp, stamp],
    ).fetchall()
    return {phase: int(n) for phase, n in rows}


def promotions_page(
    db: Db,
    wanted: int,
    now: datetime | None = None,
    phase: str | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """Promotions, last changed first, in ``phase`` (any when None), page ``wanted``;
    each with its ``phase`` and its ``stores`` list decoded (None: every store)."""
    stamp = clock.iso(now or clock.utcnow())
    clause, n_stamps = _PHASE_WHERE.get(phase or "", ("1 = 1", 0))
    params: list[Any] = [stamp] * n_stamps
    total = int(hdb.scalar(db, f"SELECT count(*) FROM promotions WHERE {clause}", params))  # noqa: S608
    number, offset = paginate(total, wanted, size)
    rows = hdb.rows(
        db,
        f"SELECT p.*, {_PHASE} AS phase FROM promotions p WHERE {clause} "  # noqa: S608
        "ORDER BY updated_at DESC, id LIMIT ? OFFSET ?",
        [stamp, stamp, *params, size, offset],
    )
    for r in rows:
        r["stores"] = json.loads(r["stores"]) if r["stores"] is not None else None
    return Page(rows, total, number, size)
