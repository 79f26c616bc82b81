"""Pull the hub's change feed: fetch pages from the store's cursor and apply them.

:func:`pull_once` is a plain function over the database and a
:class:`~app.store.sync.client.HubClient`; the worker (app/store/sync/worker.py) runs
it in a long-poll loop. Each page is applied by app/store/sync/feed.py in one
transaction with the cursor it ends at.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlite_utils import Database

from app.core import db as dbmod
from app.store.sync import feed, promotion_images, state
from app.store.sync.client import HubClient

PAGE_LIMIT = 2000  # the most the protocol allows: fewer round trips on a first sync


@dataclass
class PullStats:
    """What one pull round did."""

    pages: int = 0
    changes: int = 0
    applied: int = 0
    stale: int = 0
    failed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    cursor: str = "0"
    remaining: int = 0


def pull_once(
    db: Database,
    client: HubClient,
    *,
    wait: int = 0,
    limit: int = PAGE_LIMIT,
    own_store_id: str | None = None,
    progress: Callable[[PullStats], None] | None = None,
    stop: threading.Event | None = None,
) -> PullStats:
    """Fetch and apply pages until the hub says there is no more; raise HubError."""
    own = own_store_id or dbmod.get_meta(db, state.STORE_ID)
    stats = PullStats(cursor=state.cursor(db))
    while True:
        page = client.get_changes(stats.cursor, wait=wait if stats.pages == 0 else 0, limit=limit)
        counts = feed.apply_page(db, page, own, first=stats.pages == 0)
        stats.pages += 1
        stats.changes += len(page["changes"])
        stats.applied += counts["applied"]
        stats.stale += counts["stale"]
        stats.failed += counts["failed"]
        for kind, n in counts["skipped"].items():
            stats.skipped[kind] = stats.skipped.get(kind, 0) + n
        stats.cursor = state.cursor(db)
        stats.remaining = int(page.get("remaining") or 0)
        if progress:
            progress(stats)
        if not page.get("more") or (stop is not None and stop.is_set()):
            # Banner images announced on the feed, fetched now so kiosks show them offline.
            promotion_images.fetch_missing_images(db, client)
            return stats
