"""SQLite through sqlite-utils, for both sides: a store's ``kiosk.db`` (one file per
store) and the hub's ``hub.db`` (app/hub/storage.py) open through :func:`connect`.

Every connection runs in WAL mode with ``synchronous=FULL`` and a busy timeout, so
the web server, the sync worker and the ``kiosk`` CLI can share one file safely.
Writes go through :func:`write`, which takes the write lock up front with
``BEGIN IMMEDIATE``: a deferred transaction that later upgrades to a writer can fail
with SQLITE_BUSY half-way, an immediate one waits for the lock before doing anything.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from sqlite_utils import Database

DB_FILENAME = "kiosk.db"
BUSY_TIMEOUT_MS = 5000
#: Python's own number of prepared statements kept per connection.
DEFAULT_STATEMENT_CACHE = 128


def connect(path: str | Path, *, statement_cache: int = DEFAULT_STATEMENT_CACHE) -> Database:
    """Open (creating if needed) the database at ``path`` with the project's pragmas;
    ``statement_cache``: how many prepared statements the connection keeps."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: the driver never opens implicit transactions; we say
    # BEGIN ourselves (db.atomic() or write()).
    conn = sqlite3.connect(
        str(path),
        isolation_level=None,
        timeout=BUSY_TIMEOUT_MS / 1000,
        check_same_thread=False,
        cached_statements=statement_cache,
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _wal(conn)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    # A small page cache per connection (one per server thread) keeps the kiosk's
    # memory low on a Raspberry Pi; the OS page cache does the rest.
    conn.execute("PRAGMA cache_size = -2000")
    return Database(conn)


def _wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. On a new file opened by several processes at once (a server and the
    CLI starting together) the switch can answer "database is locked" at once, without
    waiting on the busy timeout: try again until the timeout, as the busy handler would."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def db_path(data_dir: str | Path) -> Path:
    """Where the store database lives inside a data directory."""
    return Path(data_dir) / DB_FILENAME


@contextlib.contextmanager
def write(db: Database) -> Iterator[Database]:
    """A write transaction taken with ``BEGIN IMMEDIATE``; nested calls use savepoints."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    else:
        db.conn.execute("COMMIT")


@contextlib.contextmanager
def read(db: Database) -> Iterator[Database]:
    """A read transaction: several queries see one snapshot (a count and its rows
    agree); inside a transaction already, that one is the snapshot."""
    if db.conn.in_transaction:
        yield db
        return
    db.conn.execute("BEGIN")
    try:
        yield db
    finally:
        db.conn.execute("COMMIT")


def get_meta(db: Database, key: str, default: str | None = None) -> str | None:
    """Read one value from the ``meta`` key/value table."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else default


def set_meta(db: Database, key: str, value: str) -> None:
    """Write one value to the ``meta`` key/value table (call inside a transaction)."""
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
