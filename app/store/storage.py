"""Per-thread database connections for the web app, and the data directory's secret."""

from __future__ import annotations

import threading

from flask import current_app
from sqlite_utils import Database

from app.core import db as dbmod

_local = threading.local()


def get_db() -> Database:
    """This thread's connection to the store database (opened once per worker thread).

    Waitress serves from a fixed pool of threads; reusing one connection per thread
    saves opening the file and setting pragmas on every request. Every statement runs
    in autocommit, so a change committed by another process is seen at once.
    """
    path = str(dbmod.db_path(current_app.config["DATA_DIR"]))
    conns: dict[str, Database] = getattr(_local, "conns", None) or {}
    _local.conns = conns
    db = conns.get(path)
    if db is None:
        db = conns[path] = dbmod.connect(path)
    return db
