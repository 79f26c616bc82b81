"""A short memory the store's web workers share: ``DATA/memo.db`` (issue 15).

``kiosk serve`` runs several web worker processes (app/store/server.py): what one
remembers for a minute so as not to ask the hub again (a large cart looked up, a card
the hub does not know) must be seen by the others, or a shopper scanning twice spends
the store's look-up budget at the hub once per worker. Each entry is JSON with an
expiry (wall-clock seconds: entries outlive a restart, and a reboot resets the
monotonic clock). The file is a cache: nothing in it is ever needed (deleting it only
costs a look-up), so it is not the store database (no migration, no backup) and
writes are not made durable (``synchronous=OFF``). Keys are kept as their SHA-256
(a card id, a cart id: never the id itself on disk), every write drops whatever has
expired, of any kind, and deleted entries are overwritten (``secure_delete``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlite_utils import Database

MEMO_NAME = "memo.db"
MAX_ROWS = 1024  # per kind: the oldest go first past it


def path_of(db: Database) -> Path | None:
    """``memo.db`` beside the store database ``db``; None for an in-memory database."""
    for row in db.execute("PRAGMA database_list").fetchall():
        if row[1] == "main" and row[2]:
            return Path(row[2]).parent / MEMO_NAME
    return None


class Memo:
    """Entries of one ``kind``, each kept ``ttl`` seconds, in the file ``path``."""

    def __init__(self, path: str | Path, kind: str, ttl: float) -> None:
        self.path = str(path)
        self.kind = kind
        self.ttl = ttl

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=2.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS memo (kind TEXT NOT NULL, key TEXT NOT NULL, "
            "value TEXT NOT NULL, expires REAL NOT NULL, PRIMARY KEY (kind, key))"
        )
        return conn

    def get(self, key: str) -> Any | None:
        """The value remembered for ``key``, None when none is (or it expired)."""
        conn = self._connect()
        try:
            row = conn.execute(
                "SELECT value FROM memo WHERE kind = ? AND key = ? AND expires > ?",
                [self.kind, _hashed(key), time.time()],
            ).fetchone()
        finally:
            conn.close()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        """Remember ``value`` for ``key`` ``ttl`` seconds (expired entries go now)."""
        now = time.time()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM memo WHERE expires <= ?", [now])
            conn.execute(
                "INSERT OR REPLACE INTO memo (kind, key, value, expires) VALUES (?, ?, ?, ?)",
                [self.kind, _hashed(key), json.dumps(value), now + self.ttl],
            )
            conn.execute(
                "DELETE FROM memo WHERE kind = ? AND key NOT IN (SELECT key FROM memo "
                "WHERE kind = ? ORDER BY expires DESC LIMIT ?)",
                [self.kind, self.kind, MAX_ROWS],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()


def _hashed(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
