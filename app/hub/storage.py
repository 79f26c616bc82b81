"""Where the hub's database lives, and the web app's pool of connections to it.

The database is PostgreSQL when a URL is given (``kiosk hub serve --database
postgresql://...`` or ``KIOSK_HUB_DATABASE``), else the embedded SQLite file
``DATA/hub.db``. The data directory is needed either way: the hub's signing key and the
session key live there.

A request takes a connection from the process's pool on first use and gives it back when
the request ends (or earlier: :func:`release_db`, which the change feed's long-poll calls
before it waits, so a thousand held polls hold no connection).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Flask, current_app, g

from app.hub import database as hdb
from app.hub.database import Db
from app.hub.migrations import migrate

DB_FILENAME = "hub.db"
#: The environment variable naming the hub's database (a ``postgresql://`` URL).
DATABASE_ENV = "KIOSK_HUB_DATABASE"
#: Connections a worker process keeps to PostgreSQL at most (requests wait for one);
#: to an SQLite file, four times as many (they are cheap, and wait on its one lock).
DEFAULT_POOL_SIZE = 10
#: How long a request waits for a pooled connection before the hub answers 503.
POOL_TIMEOUT_S = 10.0

log = logging.getLogger(__name__)


def db_path(data_dir: str | Path) -> Path:
    """Where the embedded SQLite database lives inside a data directory."""
    return Path(data_dir) / DB_FILENAME


def database_target(data_dir: str | Path, database: str | None = None) -> str | Path:
    """The database to open: ``database`` (a PostgreSQL URL) when given, else
    ``KIOSK_HUB_DATABASE`` when set, else ``DATA/hub.db``."""
    url = database or os.environ.get(DATABASE_ENV) or None
    if url:
        if not hdb.is_url(url):
            raise ValueError(
                f"the hub database must be a postgresql:// URL (or unset for "
                f"{DB_FILENAME} in the data directory), got {describe(url)!r}"
            )
        return url
    return db_path(data_dir)


def describe(target: str | Path) -> str:
    """The database for people and logs: a URL without its password (in the user
    part or as a ``password=`` parameter)."""
    text = str(target)
    if not hdb.is_url(text):
        return text
    parts = urlsplit(text)
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        netloc = f"{user}{':***' if ':' in creds else ''}@{host}"
    query = urlencode(
        [(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def open_db(data_dir: str | Path, database: str | None = None) -> Db:
    """Open the hub database (see :func:`database_target`), creating or migrating it."""
    db = open_database(database_target(data_dir, database))
    db.pii_data_dir = Path(data_dir)  # where its personal-data key is (order_people.ring_of)
    return db


def open_database(target: str | Path) -> Db:
    """Open and migrate the hub database at ``target``: a ``postgresql://`` URL, or an
    SQLite file path."""
    db = hdb.connect(target)
    try:
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


class PoolTimeout(Exception):
    """No database connection came free in time (the hub is overloaded)."""


class SqlitePool:
    """Connections to the hub's SQLite file, reused: at most ``size``, one per request
    using the database at that moment (a held long-poll holds none)."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self._free: queue.LifoQueue[Db] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max(1, size))

    def get(self) -> Db:
        if not self._slots.acquire(timeout=POOL_TIMEOUT_S):
            raise PoolTimeout(f"no free connection to {self.path} in {POOL_TIMEOUT_S:.0f} s")
        try:
            return self._free.get_nowait()
        except queue.Empty:
            try:
                return hdb.connect(self.path)
            except BaseException:
                self._slots.release()
                raise

    def put(self, db: Db) -> None:
        try:
            if db.conn.in_transaction:  # a request that failed mid-transaction
                db.conn.rollback()
            self._free.put(db)
        finally:
            self._slots.release()

    def close(self) -> None:
        while True:
            try:
                self._free.get_nowait().close()
            except queue.Empty:
                return


class PgPool:
    """A psycopg_pool of autocommit connections (transactions are explicit)."""

    def __init__(self, url: str, size: int) -> None:
        from psycopg_pool import ConnectionPool

        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, size),
            kwargs={"autocommit": True, "connect_timeout": hdb.PG_CONNECT_TIMEOUT_S},
            open=True,
            name="kiosk-hub",
        )

    def get(self) -> Db:
        from psycopg_pool import PoolTimeout as PsycopgPoolTimeout

        try:
            return hdb.PgDatabase(self.pool.getconn(timeout=POOL_TIMEOUT_S))
        except PsycopgPoolTimeout as exc:
            raise PoolTimeout(str(exc)) from exc

    def put(self, db: Db) -> None:
        # The pool rolls back a connection left in a transaction, and drops a broken one.
        self.pool.putconn(db.conn)

    def close(self) -> None:
        self.pool.close()


Pool = SqlitePool | PgPool
_pools: dict[str, Pool] = {}
_pools_lock = threading.Lock()


def pool_for(target: str | Path, size: int = DEFAULT_POOL_SIZE) -> Pool:
    """This process's pool for a database (made on first use)."""
    key = str(target)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = PgPool(key, size) if hdb.is_url(key) else SqlitePool(Path(key), 4 * size)
            _pools[key] = pool
        return pool


def init_app(app: Flask) -> None:
    """Resolve the app's database once (``DATABASE`` setting, else ``DATA/hub.db``) and
    give every request's connection back to the pool when the request ends."""
    app.config["HUB_DATABASE"] = database_target(
        app.config["DATA_DIR"], app.config.get("DATABASE") or None
    )
    app.teardown_appcontext(_teardown)


def _pool() -> Pool:
    # Looked up once per process and app (made after a --workers fork, on first use).
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    pool = app.extensions.get("kiosk_hub_pool")
    if pool is None:
        config = app.config
        size = int(config.get("DB_POOL_SIZE", DEFAULT_POOL_SIZE))
        pool = app.extensions["kiosk_hub_pool"] = pool_for(config["HUB_DATABASE"], size)
    return pool


def get_db() -> Db:
    """This request's connection to the hub database (taken from the pool on first use).

    Every statement outside an explicit transaction runs in autocommit, so commits by
    other processes are seen at once."""
    db = g.get("hub_db")
    if db is None:
        pool = _pool()
        db = g.hub_db = pool.get()
        g.hub_pool = pool
        # Where its personal-data key is (app/hub/domain/order_people.py's ring_of).
        db.pii_data_dir = Path(current_app.config["DATA_DIR"])
    return db


def release_db() -> None:
    """Give this request's connection back now (before a long wait holding nothing)."""
    db = g.pop("hub_db", None)
    if db is not None:
        g.pop("hub_pool").put(db)


def _teardown(_exc: BaseException | None) -> None:
    try:
        release_db()
    except Exception:  # never let giving a connection back hide the request's own result
        log.exception("giving a database connection back failed")


__all__ = [
    "DATABASE_ENV",
    "DB_FILENAME",
    "PoolTimeout",
    "database_target",
    "db_path",
    "describe",
    "get_db",
    "init_app",
    "open_database",
    "open_db",
    "pool_for",
    "release_db",
]
