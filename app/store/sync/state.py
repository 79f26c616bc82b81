"""The sync state a store keeps in ``meta``: cursor, last contact, last error, progress.

The worker writes it, and the health check, the staff status screen and the kiosk's
"offline" notice read it, possibly from another process: the database is the only
channel between them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod
from app.store.domain import outbox

CURSOR = "sync.cursor"
STORE_ID = "sync.store_id"
LAST_SYNC_AT = "sync.last_sync_at"  # last exchange with the hub that succeeded
LAST_ATTEMPT_AT = "sync.last_attempt_at"
LAST_ERROR = "sync.last_error"  # empty once an exchange succeeds again
ONLINE = "sync.online"  # "1" when the latest exchange succeeded
RETRY_REQUESTED = "sync.retry_requested"  # set by staff, taken by the worker
PULL_APPLIED = "sync.pull_applied"  # changes applied by the current catch-up
PULL_REMAINING = "sync.pull_remaining"  # what the hub said was left after the last page
# The push worker's bisection (app/store/sync/worker.py): the last row of the smallest batch the hub
# failed on while answering a control request, and how often that row failed alone.
# In the database so a restart resumes the search instead of starting it over.
NARROWING = "sync.narrowing"

# A healthy worker talks to the hub at least every long-poll (25 s); allow for a slow
# answer before calling the store offline.
ONLINE_WINDOW_S = 90


def cursor(db: Database) -> str:
    """Where the change feed resumes (``"0"``: from the beginning)."""
    return dbmod.get_meta(db, CURSOR, "0") or "0"


def claim_store(db: Database, store_id: str) -> None:
    """Record which hub store this database is, and mark that store as this one."""
    with dbmod.write(db):
        dbmod.set_meta(db, STORE_ID, store_id)
        # A database seeded as another demo store must stop calling that one "self".
        db.execute("UPDATE stores SET is_self = (id = ?) WHERE is_self != (id = ?)", [store_id] * 2)


def record_success(db: Database, channel: str = "", now: datetime | None = None) -> None:
    """The hub answered on ``channel`` (push or pull): note when, clear its last error.

    An error of the other channel stays shown: a hub that serves the feed but refuses
    every transaction is not a healthy link.
    """
    stamp = clock.iso(now or clock.utcnow())
    with dbmod.write(db):
        dbmod.set_meta(db, LAST_SYNC_AT, stamp)
        dbmod.set_meta(db, LAST_ATTEMPT_AT, stamp)
        error = dbmod.get_meta(db, LAST_ERROR) or ""
        if not error or error.startswith(f"{channel}:"):
            dbmod.set_meta(db, LAST_ERROR, "")
            dbmod.set_meta(db, ONLINE, "1")


def record_failure(
    db: Database, message: str, channel: str = "", now: datetime | None = None
) -> None:
    """An exchange with the hub failed: keep the reason for the status screen."""
    with dbmod.write(db):
        dbmod.set_meta(db, LAST_ATTEMPT_AT, clock.iso(now or clock.utcnow()))
        dbmod.set_meta(db, LAST_ERROR, f"{channel}: {message}"[:500] if channel else message[:500])
        dbmod.set_meta(db, ONLINE, "0")


def request_retry(db: Database) -> None:
    """Ask the worker (in whichever process it runs) to try again now."""
    with dbmod.write(db):
        dbmod.set_meta(db, RETRY_REQUESTED, "1")


def take_retry_request(db: Database) -> bool:
    """True once per staff request to retry now (the flag is cleared)."""
    if dbmod.get_meta(db, RETRY_REQUESTED) != "1":
        return False
    with dbmod.write(db):
        taken = db.execute(
            "UPDATE meta SET value = '0' WHERE key = ? AND value = '1'", [RETRY_REQUESTED]
        ).rowcount
    return taken == 1


def narrowing(db: Database) -> dict[str, Any] | None:
    """The bisection in progress: ``{last, size, strikes, error, since}``, or None."""
    raw = dbmod.get_meta(db, NARROWING)
    if not raw:
        return None
    try:
        state = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(state, dict) or not isinstance(state.get("last"), str):
        return None  # unreadable: start over, nothing is lost (the rows stay queued)
    return state


def set_narrowing(db: Database, state: dict[str, Any] | None, now: datetime | None = None) -> None:
    """Save (or with None, end) the bisection in progress."""
    with dbmod.write(db):
        if state is None:
            dbmod.set_meta(db, NARROWING, "")
            return
        state = {"since": clock.iso(now or clock.utcnow()), **state}
        dbmod.set_meta(db, NARROWING, json.dumps(state, separators=(",", ":")))


def last_sync_at(db: Database) -> datetime | None:
    """When the hub last answered, or None if it never has."""
    value = dbmod.get_meta(db, LAST_SYNC_AT)
    return clock.parse_iso(value) if value else None


def is_online(db: Database, now: datetime | None = None) -> bool:
    """The latest exchange succeeded and it was recent (a dead worker goes offline too)."""
    last = last_sync_at(db)
    if last is None or dbmod.get_meta(db, ONLINE) != "1":
        return False
    return ((now or clock.utcnow()) - last).total_seconds() <= ONLINE_WINDOW_S


def snapshot(db: Database, *, hub_configured: bool, now: datetime | None = None) -> dict[str, Any]:
    """Everything the health check and the staff status screen show about sync."""
    now = now or clock.utcnow()
    box = outbox.stats(db, now)
    remaining = int(dbmod.get_meta(db, PULL_REMAINING, "0") or 0)
    applied = int(dbmod.get_meta(db, PULL_APPLIED, "0") or 0)
    state = narrowing(db)
    narrowing_view = None
    if state is not None and outbox.unsettled(db, state["last"]):
        narrowing_view = {
            "to_check": outbox.count_upto(db, state["last"]),
            "strikes": int(state.get("strikes") or 0),
            "error": str(state.get("error") or ""),
            "since": state.get("since"),
        }
    return {
        "hub_configured": hub_configured,
        "online": hub_configured and is_online(db, now),
        "outbox_depth": box["depth"],
        "oldest_unsent_age_s": box["oldest_age_s"],
        "parked": box["parked"],
        "last_sync_at": dbmod.get_meta(db, LAST_SYNC_AT),
        "last_attempt_at": dbmod.get_meta(db, LAST_ATTEMPT_AT),
        "last_error": dbmod.get_meta(db, LAST_ERROR) or None,
        "cursor": cursor(db),
        "hub_store_id": dbmod.get_meta(db, STORE_ID),
        "pull_applied": applied,
        "pull_remaining": remaining,
        # The hub fails on a batch but answers otherwise: the worker is looking for the
        # one transaction at fault (None when not).
        "narrowing": narrowing_view,
    }
