"""Where the hub's database lives, and per-thread connections for the web app."""

from __future__ import annotations

import threading
from pathlib import Path

from flask import current_app
from sqlite_utils import Database

from app.core import db as dbmod
from app.hub import database as hdb
from app.hub.migrations import migrate

DB_FILENAME = "hub.db"

_local = threading.local()


def db_path(data_dir: str | Path) -> Path:
    """Where the hub database lives inside a data directory."""
    return Path(data_dir) / DB_FILENAME


def open_db(data_dir: str | Path) -> Database:
    """Open the hub database in ``data_dir``, creating or migrating it as needed."""
    db = dbmod.connect(db_path(data_dir))
    migrate(db)
    return db


def open_database(target: str | Path) -> hdb.Db:
    """Open and migrate the hub database at ``target``: a ``postgresql://`` URL, or an
    SQLite file path (what :func:`open_db` opens inside a data directory). The web app
    does not use PostgreSQL yet (docs/postgresql-port.md)."""
    db = hdb.connect(target)
    migrate(db)
    return db


def get_db() -> Database:
    """This thread's connection to the hub database (opened once per worker thread).

    Waitress serves from a fixed pool of threads; every statement outside an explicit
    transaction runs in autocommit, so commits by other processes are seen at once.
    """
    path = str(db_path(current_app.config["DATA_DIR"]))
    conns: dict[str, Database] = getattr(_local, "conns", None) or {}
    _local.conns = conns
    db = conns.get(path)
    if db is None:
        db = conns[path] = dbmod.connect(path)
    return db
