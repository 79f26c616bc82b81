"""Per-thread database connections for the web app, and the data directory's secret."""

from __future__ import annotations

import threading

from flask import current_app
from sqlite_utils import Database

from app.core import db as dbmod

_local = threading.local()

#: Prepared statements kept per request thread's connection. SQLite holds 60-100 KB for
#: one with an ``IN (?, ?, …)`` list (the stock of a page's cards), one per list length:
#: Python's 128 kept ~5 MB per connection, in every thread of every web worker (issue 15's
#: memory budget). A page's statements are a few dozen; the hot ones stay (LRU).
STATEMENT_CACHE = 32
#: SQLite's page cache per request thread's connection, in KiB (core/db.py's 2,000 for
#: the others): 8 of them in the web workers; the OS's file cache holds the rest.
PAGE_CACHE_KIB = 1000


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
        db = conns[path] = dbmod.connect(path, statement_cache=STATEMENT_CACHE)
        db.conn.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
    return db
