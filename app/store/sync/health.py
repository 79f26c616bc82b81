"""The store's health report for head office (``POST /api/v1/health``, docs/protocol.md).

What the fleet dashboard shows about a store that only the store knows: its software
version, when this process started, free disk and database size, its outbox (unsent
depth, oldest unsent, parked rows with the hub's reasons) and the change-feed cursor it
has applied (the hub turns that into a sync lag). Built from one read transaction, so
the cursor and the parked list agree with each other.
"""

from __future__ import annotations

import contextlib
import shutil
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod
from app.core.protocol import MAX_PARKED
from app.store.domain import outbox
from app.store.sync import state

DISTRIBUTION = "store-kiosk"

# When this process started: the dashboard's "last restart".
PROCESS_STARTED_AT = clock.now_iso()


def software_version() -> str:
    """The installed package's version (``0.0.0+unknown`` when not installed)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def db_size_bytes(data_dir: str | Path) -> int:
    """The store database's size on disk, with its WAL and shared-memory files."""
    base = dbmod.db_path(data_dir)
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            total += Path(f"{base}{suffix}").stat().st_size
    return total


def build_report(db: Database, data_dir: str | Path, now: datetime | None = None) -> dict[str, Any]:
    """The health report to send now (see the module docstring for the fields)."""
    moment = now or clock.utcnow()
    with dbmod.read(db):
        stats = outbox.stats(db, moment)
        parked_rows = outbox.parked(db, limit=MAX_PARKED)
        cursor = state.cursor(db)
    return {
        "software_version": software_version(),
        "started_at": PROCESS_STARTED_AT,
        "free_disk_bytes": shutil.disk_usage(data_dir).free,
        "db_size_bytes": db_size_bytes(data_dir),
        "outbox_depth": stats["depth"],
        "oldest_unsent_at": stats["oldest_created_at"],
        "parked_count": stats["parked"],
        "parked": [
            {
                "id": r["id"],
                "type": r["type"],
                "reason": r["parked_reason"] or "",
                "message": r["parked_message"] or "",
                "created_at": r["occurred_at"],
            }
            for r in parked_rows
        ],
        "cursor": int(cursor) if cursor.isdigit() else 0,
        "sent_at": clock.iso(moment),
    }
