"""Per-thread database connections for the web app, and the data directory's secret."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from pathlib import Path

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


def secret_key(data_dir: str | Path) -> str:
    """The session-signing key of this installation, created on first use (mode 0600)."""
    path = Path(data_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name, then linked into place: two processes
        # (or two app factories) starting at once never see a half-written key, and the
        # second adopts the first one's key (link fails if the name exists).
        tmp = path.with_name(f".secret_key.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()
