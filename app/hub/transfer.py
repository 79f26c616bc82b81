"""Moving a hub from its embedded SQLite file to PostgreSQL (``kiosk hub move-to-postgresql``).

Every row of every hub table goes, unchanged, from ``DATA/hub.db`` into an empty
PostgreSQL database, so stores keep their ids, secrets and feed cursors and need no
change. Both databases are migrated to the current schema first (:func:`open_database`),
so their tables and columns are the same; the migration bookkeeping is not copied (the
target has its own). Then, in ONE PostgreSQL transaction holding the hub's write lock:

1. the target is checked to be empty of hub data (nothing but what its migrations
   wrote: ``hub_meta``, which is replaced by the source's, so the web shop's access keys
   stay valid); otherwise nothing is written;
2. each table is copied with ``COPY ... FROM STDIN`` (psycopg's ``cursor.copy``), parents
   before children (the foreign keys, read from PostgreSQL's catalog);
3. row counts are checked table by table against the source;
4. each identity column's sequence is set past the highest value copied (and past
   SQLite's own AUTOINCREMENT high-water mark, ``sqlite_sequence``: a change seq is never
   given twice, even one whose row is gone).

The source is read inside ``BEGIN IMMEDIATE``: one consistent snapshot, and no other
process can write to ``hub.db`` while it is copied. Before that, a hub (or anything
else) holding ``hub.db`` open is refused: what it writes after the copy would be lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import graphlib
import math
import os
import sqlite3
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.copy import QueuedLibpqWriter

from app.hub import database as hdb
from app.hub.database import Db, PgDatabase
from app.hub.migrations import HISTORY_TABLE, LEGACY_TABLE
from app.hub.storage import describe, open_database

#: Tables not copied: the migrations' history (the target has its own, identical).
BOOKKEEPING = frozenset({HISTORY_TABLE, LEGACY_TABLE})
#: Tables the target's migrations fill: their rows are replaced by the source's.
REPLACED = frozenset({"hub_meta"})
#: Rows between two progress reports of a long table.
PROGRESS_EVERY = 100_000
#: Rows read from SQLite at a time.
FETCH = 10_000

#: (table, rows copied so far, rows in the table)
Progress = Callable[[str, int, int], None]


class MoveError(Exception):
    """The move was refused or failed; nothing was committed to the target."""


@dataclass
class Moved:
    """What was moved: rows per table (in copy order), sequences set, time taken."""

    source: str
    target: str
    rows: dict[str, int] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.rows.values())


# --- Is hub.db in use? ----------------------------------------------------------------
# In WAL mode every connection to the file holds a shared POSIX lock on one byte of the
# ``-shm`` file (SQLite's "dead man switch", byte 128) for as long as it is open. F_GETLK
# asks who would stop us taking it exclusively: another process, with its pid. (Our own
# locks never answer, and this must run before we open the database ourselves: closing
# any descriptor of a file drops every POSIX lock this process holds on it.)
_SHM_DMS_BYTE = 128


def holders(sqlite_path: str | Path) -> list[int]:
    """Pids of other processes that have ``sqlite_path`` open (Linux; [] elsewhere or
    when nobody has it open)."""
    shm = Path(f"{sqlite_path}-shm")
    if not sys.platform.startswith("linux") or not shm.exists():
        return []
    try:
        fd = os.open(shm, os.O_RDONLY)
    except OSError:
        return []
    try:
        # struct flock on Linux: short l_type, short l_whence, off_t l_start, off_t l_len,
        # pid_t l_pid (native alignment, 32 bytes on 64-bit).
        layout = "hhqqi4x" if struct.calcsize("l") == 8 else "hhlli"
        query = struct.pack(layout, fcntl.F_WRLCK, os.SEEK_SET, _SHM_DMS_BYTE, 1, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
        l_type, _whence, _start, _len, pid = struct.unpack(layout, answer)
    except OSError:
        return []
    finally:
        os.close(fd)
    return [] if l_type == fcntl.F_UNLCK else [pid]


# --- The move -------------------------------------------------------------------------


def copy_order(dst: PgDatabase, tables: list[str]) -> list[str]:
    """``tables`` with every table after the tables its foreign keys point to."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for table in sorted(tables):
        sorter.add(table)
    for r in hdb.rows(
        dst,
        "SELECT child.relname AS child, parent.relname AS parent FROM pg_constraint c "
        "JOIN pg_class child ON child.oid = c.conrelid "
        "JOIN pg_class parent ON parent.oid = c.confrelid "
        "JOIN pg_namespace n ON n.oid = child.relnamespace "
        "WHERE c.contype = 'f' AND n.nspname = current_schema()",
    ):
        if r["child"] in tables and r["parent"] in tables and r["child"] != r["parent"]:
            sorter.add(r["child"], r["parent"])
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as exc:
        raise MoveError(f"the tables' foreign keys make a cycle: {exc.args[1]}") from exc


def _tables(db: Db) -> dict[str, list[str]]:
    return {t: cols for t, cols in hdb.table_columns(db).items() if t not in BOOKKEEPING}


def _check_schemas(src: dict[str, list[str]], dst: dict[str, list[str]]) -> None:
    problems = [f"table {t} only in hub.db" for t in sorted(set(src) - set(dst))]
    problems += [f"table {t} only in PostgreSQL" for t in sorted(set(dst) - set(src))]
    problems += [
        f"{t} has columns {sorted(set(src[t]) ^ set(dst[t]))} on one side only"
        for t in sorted(set(src) & set(dst))
        if set(src[t]) != set(dst[t])
    ]
    if problems:
        raise MoveError("the two databases' schemas differ: " + "; ".join(problems))


def target_data(dst: PgDatabase, tables: list[str]) -> dict[str, int]:
    """Tables of the target that hold hub data (rows beyond what migrations write)."""
    found = {}
    for table in tables:
        if table in REPLACED:
            continue
        n = hdb.scalar(dst, f"SELECT count(*) FROM {table}")  # noqa: S608 (catalog names)
        if n:
            found[table] = n
    return found


def _identity_columns(dst: PgDatabase) -> list[tuple[str, str]]:
    return [
        (r["table_name"], r["column_name"])
        for r in hdb.rows(
            dst,
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND is_identity = 'YES' "
            "ORDER BY table_name, column_name",
        )
    ]


def _sqlite_sequence(src: Db) -> dict[str, int]:
    """SQLite's AUTOINCREMENT high-water marks (table -> last value given)."""
    if not hdb.table_exists(src, "sqlite_sequence"):
        return {}
    return {name: seq for name, seq in src.execute("SELECT name, seq FROM sqlite_sequence")}


def _copy_table(
    src: Db,
    dst: PgDatabase,
    table: str,
    columns: list[str],
    expected: int,
    progress: Progress | None,
    progress_every: int,
) -> int:
    names = ", ".join(columns)
    cursor = src.execute(f"SELECT {names} FROM {table}")  # noqa: S608 (catalog names)
    done = 0
    next_report = progress_every
    statement = f"COPY {table} ({names}) FROM STDIN"
    with dst.conn.cursor() as pg, pg.copy(statement, writer=QueuedLibpqWriter(pg)) as copy:
        # Batches that divide the progress step: reports fall on its multiples.
        while batch := cursor.fetchmany(math.gcd(FETCH, progress_every)):
            for row in batch:
                copy.write_row(row)
            done += len(batch)
            if progress is not None and done >= next_report:
                progress(table, done, expected)
                next_report += progress_every
    return done


def move_to_postgresql(
    sqlite_path: str | Path,
    url: str,
    progress: Progress | None = None,
    progress_every: int = PROGRESS_EVERY,
) -> Moved:
    """Copy the hub in ``sqlite_path`` into the empty hub database at ``url`` (see the
    module's docstring). Raises :class:`MoveError` (nothing committed) when refused."""
    sqlite_path = Path(sqlite_path)
    if not hdb.is_url(url):
        raise MoveError(f"the target must be a postgresql:// URL, got {describe(url)!r}")
    if not sqlite_path.is_file():
        raise MoveError(f"no hub database at {sqlite_path}")
    busy = holders(sqlite_path)
    if busy:
        raise MoveError(
            f"{sqlite_path} is open in another process (pid {busy[0]}): stop the hub "
            "(and anything else using hub.db) before moving it"
        )
    started = time.monotonic()
    moved = Moved(str(sqlite_path), describe(url))
    src = open_database(sqlite_path)
    try:
        try:
            dst = open_database(url)
        except psycopg.Error as exc:
            raise MoveError(f"cannot open {describe(url)}: {exc}") from exc
        try:
            _move(src, dst, moved, progress, progress_every)
        finally:
            dst.close()
    finally:
        src.close()
    moved.seconds = time.monotonic() - started
    return moved


def _move(src: Db, dst: Db, moved: Moved, progress: Progress | None, progress_every: int) -> None:
    if not isinstance(dst, PgDatabase):
        raise MoveError(f"{moved.target} is not a PostgreSQL database")
    src_tables, dst_tables = _tables(src), _tables(dst)
    _check_schemas(src_tables, dst_tables)
    with contextlib.ExitStack() as stack:
        try:
            # BEGIN IMMEDIATE: one snapshot of the source, and no writer beside us (it
            # commits a transaction that wrote nothing).
            stack.enter_context(hdb.write(src))
        except sqlite3.OperationalError as exc:
            raise MoveError(
                f"{moved.source} is locked by a writer ({exc}): stop the hub before moving it"
            ) from exc
        with hdb.write(dst):
            _copy_all(src, dst, dst_tables, moved, progress, progress_every)
    # Fresh planner statistics for the tables just filled (autovacuum would get there).
    hdb.execute(dst, "ANALYZE")


def _count(db: Db, table: str) -> int:
    return hdb.scalar(db, f"SELECT count(*) FROM {table}")  # noqa: S608 (catalog names)


def _copy_all(
    src: Db,
    dst: PgDatabase,
    tables: dict[str, list[str]],
    moved: Moved,
    progress: Progress | None,
    progress_every: int,
) -> None:
    """Inside both transactions: check the target is empty, copy, count, set sequences."""
    order = copy_order(dst, list(tables))
    found = target_data(dst, order)
    if found:
        listed = ", ".join(f"{t}: {n:,}" for t, n in sorted(found.items()))
        raise MoveError(
            f"{moved.target} already holds hub data ({listed}): move into a new, "
            "empty database; nothing was written"
        )
    counts = {t: _count(src, t) for t in order}
    for table in order:
        if table in REPLACED:
            hdb.execute(dst, f"DELETE FROM {table}")  # noqa: S608 (catalog names)
        try:
            moved.rows[table] = _copy_table(
                src, dst, table, tables[table], counts[table], progress, progress_every
            )
        except psycopg.Error as exc:
            raise MoveError(f"copying {table} failed: {exc}") from exc
    wrong = []
    for table in order:
        landed = _count(dst, table)
        if not counts[table] == moved.rows[table] == landed:
            wrong.append(f"{table}: {counts[table]}, {moved.rows[table]}, {landed}")
    if wrong:
        raise MoveError(
            "row counts differ after the copy (table: hub.db, copied, PostgreSQL): "
            + "; ".join(wrong)
        )
    high = _sqlite_sequence(src)
    for table, column in _identity_columns(dst):
        top = hdb.scalar(dst, f"SELECT max({column}) FROM {table}")  # noqa: S608
        top = max((v for v in (top, high.get(table)) if v is not None), default=None)
        if top is None:
            continue  # an empty table that never had a row: its sequence starts at 1
        # setval works on identity columns too, GENERATED ALWAYS (changes.seq) included.
        hdb.execute(dst, "SELECT setval(pg_get_serial_sequence(?, ?), ?)", [table, column, top])
        moved.sequences[f"{table}.{column}"] = top


def report_lines(moved: Moved) -> list[str]:
    """The summary the command prints: rows per table, sequences, what to do next."""
    width = max(len(t) for t in moved.rows) if moved.rows else 5
    lines = [f"moved {moved.source} to {moved.target} in {moved.seconds:.1f} s"]
    lines += [f"  {t:<{width}} {n:>12,}" for t, n in sorted(moved.rows.items())]
    lines.append(f"  {'total':<{width}} {moved.total:>12,}")
    if moved.sequences:
        lines.append(
            "sequences set past the copied rows: "
            + ", ".join(f"{c} -> {v:,}" for c, v in sorted(moved.sequences.items()))
        )
    return lines


__all__ = [
    "BOOKKEEPING",
    "PROGRESS_EVERY",
    "REPLACED",
    "MoveError",
    "Moved",
    "copy_order",
    "holders",
    "move_to_postgresql",
    "report_lines",
    "target_data",
]
