"""The change feed: an append-only log of what stores must learn, read by cursor.

A change is ``(seq, kind, key, store_id, data)``; ``store_id`` NULL means it is for
every store. Stores apply changes as upserts keyed by ``(kind, key)``, so reading a
page twice is harmless.

Why ``seq`` works as a cursor: a reader that has seen seq N must see every smaller seq
that will ever exist, i.e. seqs must become visible in number order.

- SQLite has one writer at a time (``BEGIN IMMEDIATE``), so seqs are assigned and
  committed in increasing order.
- PostgreSQL draws numbers from the identity sequence at insert time, and concurrent
  transactions commit in any order: without care a reader at cursor 105 never gets 104
  when 104 commits after 105 (reproduced in tests/test_pg_cluster.py). The fix: a seq
  is drawn only under the hub-wide write lock (app/hub/database.py), an advisory lock
  held to commit, which :func:`append_change` takes itself (a no-op when the caller's
  ``write()`` holds it already, as it does by default). Commit order is then seq
  order. Proven by tests/test_hub_database.py (writer processes against a reader).
  :func:`changes_since` reads in one REPEATABLE READ snapshot, so a visible newest seq
  implies every smaller one is visible too, and the cursor may jump to it.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from app.core.clock import now_iso
from app.hub import database as hdb
from app.hub.database import Db

MAX_LIMIT = 2000
DEFAULT_LIMIT = 1000

_PAGE = {
    # "+store_id" keeps SQLite's planner on the rowid range (seq order, stops at LIMIT)
    # instead of an OR over the (store_id, seq) index followed by a sort. PostgreSQL
    # has no such hint (unary + on text is an error) and needs none.
    hdb.SQLITE: "SELECT seq, kind, key, data FROM changes "
    "WHERE seq > ? AND (+store_id IS NULL OR +store_id = ?) ORDER BY seq LIMIT ?",
    hdb.POSTGRESQL: "SELECT seq, kind, key, data FROM changes "
    "WHERE seq > ? AND (store_id IS NULL OR store_id = ?) ORDER BY seq LIMIT ?",
}


#: The PostgreSQL channel a commit that appended changes notifies (no payload).
NOTIFY_CHANNEL = "kiosk_hub_changes"


def append_change(
    db: Db, kind: str, key: str, data: dict[str, Any], store_id: str | None = None
) -> int:
    """Append one change and return its seq (call inside the caller's write transaction;
    on PostgreSQL one is opened if there is none, so the lock below is held to commit)."""
    row = {
        "kind": kind,
        "key": key,
        "store_id": store_id,
        "data": json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        "created_at": now_iso(),
    }
    outside = hdb.is_pg(db) and not db.in_transaction
    with hdb.write(db) if outside else contextlib.nullcontext():
        # The seq is drawn under the hub-wide write lock, held to commit (module
        # docstring): a no-op on SQLite, and on PostgreSQL when the caller's write()
        # holds it already.
        hdb.take_lock(db, hdb.WRITE_LOCK)
        seq = int(hdb.insert(db, "changes", row, returning="seq"))
        notify(db)
        return seq


def append_changes(
    db: Db, kind: str, entries: list[tuple[str, dict[str, Any]]], store_id: str | None = None
) -> list[int]:
    """Append many changes of one kind, ``(key, data)`` in order, in one statement (inside
    the caller's write transaction, which holds the hub-wide write lock); their seqs in
    the same order. Each data must name its transaction (``"tx"``) or otherwise differ:
    the seqs are matched back through it, and checked to rise in the order given (a
    store applies a key's changes in seq order, the last one stays)."""
    if not entries:
        return []
    hdb.take_lock(db, hdb.WRITE_LOCK)
    now = now_iso()
    texts = [json.dumps(data, ensure_ascii=False, separators=(",", ":")) for _, data in entries]
    marks = ",".join(["(?, ?, ?, ?, ?)"] * len(entries))
    params = [
        v
        for (key, _), text in zip(entries, texts, strict=True)
        for v in (kind, key, store_id, text, now)
    ]
    rows = hdb.execute(
        db,
        f"INSERT INTO changes (kind, key, store_id, data, created_at) VALUES {marks} "  # noqa: S608
        "RETURNING seq, data",
        params,
    ).fetchall()
    by_text = {text: int(seq) for seq, text in rows}
    seqs = [by_text[text] for text in texts]
    if len(by_text) != len(texts) or seqs != sorted(seqs):
        raise RuntimeError("the changes' seqs do not follow the order given")
    notify(db)
    return seqs


def notify(db: Db) -> None:
    """Wake every hub process's feed waiter (app/hub/feed_wait.py) when this transaction
    commits: call it after appending changes (PostgreSQL; SQLite's waiter looks)."""
    if hdb.is_pg(db):
        # Delivered at commit; several in one transaction arrive as one.
        hdb.execute(db, f"NOTIFY {NOTIFY_CHANNEL}")


def last_seq(db: Db) -> int:
    """The newest seq in the feed, 0 when empty (a cheap query: seq is the rowid)."""
    return int(hdb.scalar(db, "SELECT coalesce(max(seq), 0) FROM changes"))


def changes_since(
    db: Db, store_id: str, since: int, limit: int = DEFAULT_LIMIT, *, raw: bool = False
) -> dict[str, Any]:
    """One page of the feed for ``store_id`` after seq ``since`` (see docs/protocol.md).

    Returns ``{changes, cursor, more, remaining, server_time}``. When the page is not
    full, ``cursor`` jumps to the newest seq in the feed, past changes meant for other
    stores, so the next request does not scan them again. With ``raw``, each change's
    ``data`` is the JSON text as stored (the API sends it on without parsing it).
    """
    limit = max(1, min(int(limit), MAX_LIMIT))
    since = max(0, int(since))
    with hdb.read(db):  # a page, its count and the last seq agree
        rows = hdb.execute(db, _PAGE[hdb.dialect(db)], [since, store_id, limit]).fetchall()
        newest = last_seq(db)
        if len(rows) == limit:
            cursor = rows[-1][0]
            remaining = hdb.execute(
                db,
                "SELECT (SELECT count(*) FROM changes WHERE store_id IS NULL AND seq > ?)"
                " + (SELECT count(*) FROM changes WHERE store_id = ? AND seq > ?)",
                [cursor, store_id, cursor],
            ).fetchone()[0]
        else:
            cursor = max(since, newest)
            remaining = 0
    return {
        "changes": [
            {"seq": seq, "kind": kind, "key": key, "data": data if raw else json.loads(data)}
            for seq, kind, key, data in rows
        ],
        "cursor": str(cursor),
        "more": remaining > 0,
        "remaining": remaining,
        "server_time": now_iso(),
    }
