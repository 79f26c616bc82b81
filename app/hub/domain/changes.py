"""The change feed: an append-only log of what stores must learn, read by cursor.

A change is ``(seq, kind, key, store_id, data)``; ``store_id`` NULL means it is for
every store. Stores apply changes as upserts keyed by ``(kind, key)``, so reading a
page twice is harmless.

Why ``seq`` works as a cursor here: SQLite has one writer at a time, so seqs are
assigned and committed in increasing order, and a reader that sees seq N sees every
smaller seq that will ever exist. (A database with concurrent writers, such as
PostgreSQL, would need a commit-ordered cursor instead; the cursor is an opaque string
in the protocol for that reason.)
"""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

from app.core import db as dbmod
from app.core.clock import now_iso

MAX_LIMIT = 2000
DEFAULT_LIMIT = 1000


def append_change(
    db: Database, kind: str, key: str, data: dict[str, Any], store_id: str | None = None
) -> int:
    """Append one change and return its seq (call inside the caller's write transaction)."""
    cursor = db.execute(
        "INSERT INTO changes (kind, key, store_id, data, created_at) VALUES (?, ?, ?, ?, ?)",
        [
            kind,
            key,
            store_id,
            json.dumps(data, ensure_ascii=False, separators=(",", ":")),
            now_iso(),
        ],
    )
    return int(cursor.lastrowid)


def last_seq(db: Database) -> int:
    """The newest seq in the feed, 0 when empty (a cheap query: seq is the rowid)."""
    return int(db.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0])


def changes_since(
    db: Database, store_id: str, since: int, limit: int = DEFAULT_LIMIT
) -> dict[str, Any]:
    """One page of the feed for ``store_id`` after seq ``since`` (see docs/protocol.md).

    Returns ``{changes, cursor, more, remaining, server_time}``. When the page is not
    full, ``cursor`` jumps to the newest seq in the feed, past changes meant for other
    stores, so the next request does not scan them again.
    """
    limit = max(1, min(int(limit), MAX_LIMIT))
    since = max(0, int(since))
    with dbmod.read(db):  # a page, its count and the last seq agree
        # "+store_id" keeps the planner on the rowid range (seq order, stops at LIMIT)
        # instead of an OR over the (store_id, seq) index followed by a sort.
        rows = db.execute(
            "SELECT seq, kind, key, data FROM changes "
            "WHERE seq > ? AND (+store_id IS NULL OR +store_id = ?) ORDER BY seq LIMIT ?",
            [since, store_id, limit],
        ).fetchall()
        newest = last_seq(db)
        if len(rows) == limit:
            cursor = rows[-1][0]
            remaining = db.execute(
                "SELECT (SELECT count(*) FROM changes WHERE store_id IS NULL AND seq > ?)"
                " + (SELECT count(*) FROM changes WHERE store_id = ? AND seq > ?)",
                [cursor, store_id, cursor],
            ).fetchone()[0]
        else:
            cursor = max(since, newest)
            remaining = 0
    return {
        "changes": [
            {"seq": seq, "kind": kind, "key": key, "data": json.loads(data)}
            for seq, kind, key, data in rows
        ],
        "cursor": str(cursor),
        "more": remaining > 0,
        "remaining": remaining,
        "server_time": now_iso(),
    }
