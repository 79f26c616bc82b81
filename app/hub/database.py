"""The hub's database layer: one interface over SQLite (sqlite_utils) and PostgreSQL (psycopg 3).

SQLite stays the embedded default (``DATA/hub.db``, opened by :mod:`app.core.db`);
``connect("postgresql://...")`` opens PostgreSQL instead. Every function here takes
either kind of connection, so hub modules are written once:

- SQL is written with ``?`` placeholders (as the whole hub already is); on PostgreSQL
  they become ``%s`` once per distinct statement (cached), outside string literals and
  quoted identifiers, and literal ``%`` are doubled (psycopg reads ``%`` as a marker).
- :func:`execute` returns the driver's cursor (tuple rows, ``rowcount``); :func:`rows`
  and :func:`one` return dicts; :func:`scalar` the first column of the first row.
- :func:`write` is the write transaction. SQLite: ``BEGIN IMMEDIATE`` (one writer per
  file, every process). PostgreSQL: ``BEGIN`` then ``pg_advisory_xact_lock`` on the
  hub-wide write lock, held to commit: the same semantics, so modules written for
  SQLite's single writer stay correct (docs/hub-database.md), and the change
  feed's seqs commit in seq order (§4). ``lock=None`` takes no lock (per-request writes
  that are atomic by themselves), ``lock="name"`` a lock of that name only. Nested calls
  are savepoints on both.
- :func:`read` is a read transaction seeing one snapshot (PostgreSQL: REPEATABLE READ
  READ ONLY, since its default READ COMMITTED takes a new snapshot per statement).
- :func:`insert` / :func:`upsert` build the statement from a dict.
- JSON is stored as ``text`` on both (``json.dumps`` in, ``json.loads`` out): jsonb
  would come back from psycopg as a dict but from sqlite3 as a string, reorder keys,
  and the hub never queries inside these columns.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq
from sqlite_utils import Database

from app.core import db as dbmod

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

#: The hub-wide write lock's name: what ``write(db)`` takes by default.
WRITE_LOCK = "hub-writer"
#: Namespace (first key of the two-key advisory lock) for the hub's named locks.
LOCK_NAMESPACE = 0x6B696F  # "kio"

IntegrityError = (sqlite3.IntegrityError, psycopg.IntegrityError)
OperationalError = (sqlite3.OperationalError, psycopg.OperationalError)
#: A transaction the database aborted whole to break a deadlock (or a serialisation
#: failure): nothing of it was committed, running it again is right. PostgreSQL only.
RetryableError = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)

PG_CONNECT_TIMEOUT_S = 10


def is_url(target: str | Path) -> bool:
    """True for a PostgreSQL URL (``postgresql://`` or ``postgres://``)."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class PgDatabase:
    """A psycopg 3 connection in autocommit mode (transactions are explicit: :func:`write`,
    :func:`read`), whose :meth:`execute` takes the hub's ``?`` SQL like sqlite_utils'."""

    dialect = POSTGRESQL

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    @classmethod
    def connect(cls, url: str) -> PgDatabase:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=PG_CONNECT_TIMEOUT_S)
        return cls(conn)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> psycopg.Cursor:
        return self.conn.execute(to_pg(sql), _params(params))

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> psycopg.Cursor:
        cur = self.conn.cursor()
        cur.executemany(to_pg(sql), [_params(p) for p in seq])
        return cur

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.conn.close()


Db = Database | PgDatabase


def connect(target: str | Path) -> Db:
    """Open the hub database: a ``postgresql://`` URL, else an SQLite file path."""
    if is_url(target):
        return PgDatabase.connect(str(target))
    return dbmod.connect(target)


def dialect(db: Db) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    return POSTGRESQL if isinstance(db, PgDatabase) else SQLITE


def is_pg(db: Db) -> bool:
    return isinstance(db, PgDatabase)


def _params(params: Sequence[Any] | Mapping[str, Any] | None) -> list[Any]:
    # psycopg sends a Python bool as boolean, which an integer column refuses; sqlite3
    # stores 1/0. The hub's flags are integer columns on both.
    return [int(p) if isinstance(p, bool) else p for p in (params or ())]


@functools.lru_cache(maxsize=4096)
def to_pg(sql: str) -> str:
    """``?`` -> ``%s`` and ``%`` -> ``%%``, leaving ``?`` inside quotes alone."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            out.append("%s")
            continue
        out.append("%%" if ch == "%" else ch)
    return "".join(out)


def execute(db: Db, sql: str, params: Sequence[Any] | None = None) -> Any:
    """Run one statement; the driver's cursor (tuple rows, ``rowcount``)."""
    if isinstance(db, PgDatabase):
        return db.execute(sql, params)
    return db.execute(sql, _params(params))


def executemany(db: Db, sql: str, seq: Sequence[Sequence[Any]]) -> None:
    if isinstance(db, PgDatabase):
        db.executemany(sql, seq)
    else:
        db.conn.executemany(sql, [_params(p) for p in seq])


def _dicts(cursor: Any) -> list[dict[str, Any]]:
    if cursor.description is None:
        return []
    cols = [d[0] for d in cursor.description]
    return [dict(zip(cols, row, strict=True)) for row in cursor.fetchall()]


def rows(db: Db, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """Every row as a dict (column name -> value)."""
    return _dicts(execute(db, sql, params))


def one(db: Db, sql: str, params: Sequence[Any] | None = None) -> dict[str, Any] | None:
    """The first row as a dict, or None."""
    found = rows(db, sql, params)
    return found[0] if found else None


def scalar(db: Db, sql: str, params: Sequence[Any] | None = None, default: Any = None) -> Any:
    """The first column of the first row, or ``default``."""
    row = execute(db, sql, params).fetchone()
    return default if row is None else row[0]


_IDENT = re.compile(r"[a-z_][a-z0-9_]*")


def _names(*names: str) -> str:
    """Table and column names joined with commas, refused unless plain identifiers
    (they are interpolated into SQL; values never are)."""
    for name in names:
        if not _IDENT.fullmatch(name):
            raise ValueError(f"not an SQL identifier: {name!r}")
    return ", ".join(names)


def insert(db: Db, table: str, row: Mapping[str, Any], returning: str | None = None) -> Any:
    """``INSERT`` a dict; with ``returning``, that column of the new row (``RETURNING``
    works on SQLite >= 3.35 too: no ``lastrowid``)."""
    cols = list(row)
    marks = ", ".join("?" for _ in cols)
    sql = f"INSERT INTO {_names(table)} ({_names(*cols)}) VALUES ({marks})"  # noqa: S608
    if returning:
        sql += f" RETURNING {_names(returning)}"
    cur = execute(db, sql, [row[c] for c in cols])
    return cur.fetchone()[0] if returning else cur.rowcount


def upsert(
    db: Db,
    table: str,
    row: Mapping[str, Any],
    conflict: Sequence[str],
    update: Sequence[str] | None = None,
) -> int:
    """``INSERT ... ON CONFLICT (conflict) DO UPDATE SET col = excluded.col`` for the
    columns of ``update`` (default: every column not in ``conflict``; empty: DO NOTHING).
    Returns the rowcount: 0 when DO NOTHING skipped the row."""
    cols = list(row)
    update = [c for c in cols if c not in conflict] if update is None else list(update)
    _names(*update)
    action = (
        "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in update)
        if update
        else "DO NOTHING"
    )
    marks = ", ".join("?" for _ in cols)
    sql = (
        f"INSERT INTO {_names(table)} ({_names(*cols)}) VALUES ({marks}) "  # noqa: S608
        f"ON CONFLICT ({_names(*conflict)}) {action}"
    )
    return execute(db, sql, [row[c] for c in cols]).rowcount


def lock_key(name: str) -> int:
    """A stable 32-bit signed key for a lock name (the second key of the advisory lock)."""
    return zlib.crc32(name.encode()) - (1 << 31)


def take_lock(db: Db, name: str) -> None:
    """Take the named lock until the end of the current transaction (PostgreSQL only:
    on SQLite the transaction already holds the file's single write lock)."""
    if isinstance(db, PgDatabase):
        db.execute("SELECT pg_advisory_xact_lock(?, ?)", [LOCK_NAMESPACE, lock_key(name)])


@contextlib.contextmanager
def write(db: Db, lock: str | None = WRITE_LOCK, *, durable: bool = True) -> Iterator[Db]:
    """A write transaction (see the module's docstring); nested calls are savepoints.

    ``durable=False`` is for bookkeeping a power cut may lose without harm (a request's
    nonce): its commit does not wait for the disk (SQLite: ``synchronous =
    NORMAL`` for this commit, still crash-safe in WAL mode; PostgreSQL: ``SET LOCAL
    synchronous_commit = off``). Under gevent a commit that waits on fsync holds the
    whole process, and there is one such write per signed request."""
    if not isinstance(db, PgDatabase):
        with _sqlite_write(db, durable):
            yield db
        return
    if db.in_transaction:
        with db.conn.transaction():
            if lock is not None:
                take_lock(db, lock)
            yield db
        return
    db.conn.execute("BEGIN")
    try:
        if not durable:
            db.conn.execute("SET LOCAL synchronous_commit = off")
        if lock is not None:
            take_lock(db, lock)
        yield db
    except BaseException:
        if db.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    else:
        db.conn.execute("COMMIT")


def _gevent_active() -> bool:
    """True under ``kiosk hub serve``'s gevent server (threads are greenlets there)."""
    if "gevent" not in sys.modules:
        return False
    from gevent import monkey

    return bool(monkey.is_module_patched("threading"))


_pools: dict[str, Any] = {}


def off_loop(fn: Callable[..., Any], *args: Any, pool: str = "wait") -> Any:
    """Run ``fn(*args)`` where a wait in C does not stop the server: under gevent in a
    real thread (sqlite3 lets go of the GIL while it waits on a lock or the disk; the
    calling greenlet waits, the others run on), else right here.

    Two pools: "wait" for connections waiting for the write lock, "commit" for the
    COMMIT of the one connection holding it. Were they one, waiters could fill it and
    the holder's COMMIT would queue behind them until their busy timeout."""
    if not _gevent_active():
        return fn(*args)
    from gevent.threadpool import ThreadPool

    found = _pools.get(pool)
    if found is None:
        found = _pools[pool] = ThreadPool(8 if pool == "wait" else 2)
    return found.apply(fn, args)


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``: at once when the write lock is free; when another
    connection holds it, wait for it off the loop (the busy timeout sleeps in C)."""
    if not _gevent_active():
        conn.execute("BEGIN IMMEDIATE")
        return
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("BEGIN IMMEDIATE")
        return
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
    finally:
        conn.execute(f"PRAGMA busy_timeout = {dbmod.BUSY_TIMEOUT_MS}")
    off_loop(conn.execute, "BEGIN IMMEDIATE")


@contextlib.contextmanager
def _sqlite_write(db: Database, durable: bool) -> Iterator[None]:
    """SQLite's side of :func:`write`. A nested call is a savepoint. Under gevent the
    waits happen off the event loop: for the write lock (:func:`_begin_immediate`) and
    for the disk (a durable COMMIT's fsync), so one slow disk or one other process
    holding the lock does not stop every held long-poll and every other request."""
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():
            yield
        return
    if not durable:
        conn.execute("PRAGMA synchronous = NORMAL")
    try:
        _begin_immediate(conn)
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if durable:
            off_loop(conn.execute, "COMMIT", pool="commit")
        else:
            conn.execute("COMMIT")  # WAL + synchronous=NORMAL: no fsync here
    finally:
        if not durable:
            conn.execute("PRAGMA synchronous = FULL")


@contextlib.contextmanager
def read(db: Db) -> Iterator[Db]:
    """A read transaction on one snapshot; inside a transaction already, that one."""
    if not isinstance(db, PgDatabase):
        with dbmod.read(db):
            yield db
        return
    if db.in_transaction:
        yield db
        return
    db.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        yield db
    finally:
        if db.in_transaction:
            db.conn.execute("COMMIT")


def table_exists(db: Db, name: str) -> bool:
    """Whether a table of that name exists (PostgreSQL: in the current schema)."""
    if isinstance(db, PgDatabase):
        sql = "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?"
    else:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return execute(db, sql, [name]).fetchone() is not None


def table_columns(db: Db) -> dict[str, list[str]]:
    """table -> column names, in order, of every user table (for tests and checks)."""
    if isinstance(db, PgDatabase):
        found: dict[str, list[str]] = {}
        for r in rows(
            db,
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
        ):
            found.setdefault(r["table_name"], []).append(r["column_name"])
        return found
    names = [
        r[0]
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
    ]
    return {n: [r[1] for r in db.execute(f"PRAGMA table_info({n})").fetchall()] for n in names}
