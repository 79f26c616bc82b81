"""Online backups of the store database, and restoring one.

A backup is taken with SQLite's backup API while the server keeps running (a WAL
reader: writers are never blocked), into ``kiosk-<UTC stamp>.db`` next to the others,
checked with ``PRAGMA integrity_check`` before it counts (a bad copy is deleted), and
the oldest beyond ``keep`` are removed. A restore refuses while any process has the
database open (the server, its sync worker, a command), checks the file first, and
keeps the current database aside as ``kiosk.db.before-restore-<stamp>``.

Plain functions taking paths and the instant to stamp with (the caller asks
:mod:`app.core.clock`), no Flask.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BACKUP_PATTERN = re.compile(r"^kiosk-(\d{8}T\d{6}Z)(?:-(\d+))?\.db$")
# SQLite's "dead man switch" byte in the -shm file: every connection to a WAL database
# holds a shared lock on it while the database is open (WALINDEX_LOCK_OFFSET 120 + 8).
_SHM_DMS_BYTE = 128


class BackupError(Exception):
    """A backup or restore that did not happen; the message says why."""


@dataclass
class BackupResult:
    path: Path
    size: int
    removed: list[Path] = field(default_factory=list)


def stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def integrity_problems(path: Path) -> list[str]:
    """What ``PRAGMA integrity_check`` finds wrong with the database file (empty: ok).

    Opened read-only; a file that is not a database at all is one problem."""
    path = Path(path)
    if not path.is_file():
        return [f"{path}: no such file"]
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return [str(exc)]
    try:
        rows = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if not conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            return ["the database is empty (no tables)"]
    except sqlite3.Error as exc:
        return [str(exc)]
    finally:
        conn.close()
    return [] if rows == ["ok"] else rows


def backups(dest: Path) -> list[Path]:
    """The backups in ``dest``, oldest first (other files are never touched)."""
    found = []
    for path in Path(dest).glob("kiosk-*.db"):
        match = BACKUP_PATTERN.match(path.name)
        if match:
            found.append(((match.group(1), int(match.group(2) or 1)), path))
    return [path for _key, path in sorted(found)]


def prune(dest: Path, keep: int) -> list[Path]:
    """Remove the oldest backups beyond the newest ``keep``; returns what went."""
    if keep < 1:
        raise ValueError("keep at least one backup")
    old = backups(dest)[:-keep]
    for path in old:
        path.unlink()
    return old


def _new_name(dest: Path, now: datetime) -> Path:
    base = f"kiosk-{stamp(now)}"
    path, n = dest / f"{base}.db", 1
    while path.exists():  # two backups in one second (or under a frozen test clock)
        n += 1
        path = dest / f"{base}-{n}.db"
    return path


def backup(db_path: Path, dest: Path, now: datetime, keep: int = 7) -> BackupResult:
    """Copy the live database at ``db_path`` into ``dest``, check it, prune old ones."""
    db_path, dest = Path(db_path), Path(dest)
    if not db_path.is_file():
        raise BackupError(f"no database at {db_path}")
    dest.mkdir(parents=True, exist_ok=True)
    target = _new_name(dest, now)
    partial = target.with_name(target.name + ".partial")
    source = sqlite3.connect(str(db_path), timeout=30)
    try:
        source.execute("PRAGMA busy_timeout = 30000")
        copy = sqlite3.connect(str(partial))
        try:
            source.backup(copy)  # all pages in one step: one consistent snapshot
            # A standalone file: no -wal/-shm beside it.
            copy.execute("PRAGMA journal_mode = DELETE")
        finally:
            copy.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup of {db_path} failed: {exc}") from exc
    finally:
        source.close()
    problems = integrity_problems(partial)
    if problems:
        partial.unlink(missing_ok=True)
        raise BackupError(
            f"the backup failed its integrity check and was deleted: {'; '.join(problems[:5])}"
        )
    os.replace(partial, target)
    _fsync_dir(dest)
    return BackupResult(path=target, size=target.stat().st_size, removed=prune(dest, keep))


def in_use(db_path: Path) -> bool:
    """Whether another process has the (WAL) database open right now.

    Every SQLite connection holds a shared lock on one byte of the ``-shm`` file while
    open; if an exclusive lock on it cannot be had, someone is using the database.
    Call it from a process that has no connection to this database itself (closing a
    file drops every POSIX lock the process holds on it)."""
    shm = Path(str(db_path) + "-shm")
    try:
        fd = os.open(shm, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_BYTE)
        except OSError:
            return True
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _SHM_DMS_BYTE)
        return False
    finally:
        os.close(fd)


def restore(db_path: Path, source: Path, now: datetime, force: bool = False) -> Path | None:
    """Put the backup ``source`` in place of the database at ``db_path``.

    Refuses while the database is in use (unless ``force``) or when ``source`` fails
    its integrity check. Returns where the current database was kept (None if there
    was none)."""
    db_path, source = Path(db_path), Path(source)
    problems = integrity_problems(source)
    if problems:
        raise BackupError(f"{source} is not a sound database: {'; '.join(problems[:5])}")
    if not force and in_use(db_path):
        raise BackupError(
            f"{db_path} is in use (is the server running?): stop it first (or --force)"
        )
    db_path.parent.mkdir(parents=True, exist_ok=True)
    partial = db_path.with_name(db_path.name + ".restoring")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(str(partial))
        try:
            src.backup(copy)
        finally:
            copy.close()
    finally:
        src.close()
    aside = None
    if db_path.exists():
        aside = db_path.with_name(f"{db_path.name}.before-restore-{stamp(now)}")
        # Fold a leftover WAL into the file first, so what is kept aside is complete.
        try:
            conn = sqlite3.connect(str(db_path))
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
        except sqlite3.Error:
            pass  # a damaged database is kept aside as it is
        os.replace(db_path, aside)
        for suffix in ("-wal", "-shm"):
            side = Path(str(db_path) + suffix)
            if side.exists():
                if suffix == "-wal" and side.stat().st_size:
                    os.replace(side, Path(str(aside) + suffix))
                else:
                    side.unlink()
    os.replace(partial, db_path)
    _fsync_dir(db_path.parent)
    return aside


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
