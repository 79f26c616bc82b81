"""The newest changes of the feed in memory, once per hub process (issue 11).

With a thousand stores in sync, every change is read by every store: each wake of the
held long-polls used to run a thousand identical queries and turn the same rows into
JSON a thousand times. Here each process keeps the last :data:`KEEP` changes, each
already written as its JSON item, and serves a store's page from them: a bisect, a
filter on the store, a join. A cursor older than what is held (a store back from a long
outage) is served from the table as before (:func:`app.hub.domain.changes.changes_since`),
with the same answer.

Fresh on every request: :meth:`RecentChanges.page` first reads the newest seq (one
cheap query) and loads what was committed since, so a page never misses a change the
store could have learnt of elsewhere. Seqs commit in seq order (the hub-wide write lock,
app/hub/domain/changes.py), so loading ``seq > newest held`` never leaves a gap.

The held changes are an immutable snapshot swapped in one assignment: readers take no
lock (greenlets or threads alike); loaders take one so two do not load the same rows.
"""

from __future__ import annotations

import bisect
import json
import threading
from dataclasses import dataclass
from typing import Any

from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import changes

#: Changes held in memory per process (about 300 bytes each as JSON).
KEEP = 20_000


def item_json(seq: int, kind: str, key: str, data: str) -> str:
    """One change as the feed's JSON object (keys sorted, as Flask's JSON writes them),
    ``data`` being the JSON text stored with it."""
    dumps = json.dumps
    return (
        f'{{"data":{data},"key":{dumps(key, ensure_ascii=False)},'
        f'"kind":{dumps(kind, ensure_ascii=False)},"seq":{int(seq)}}}'
    )


@dataclass(frozen=True)
class _Held:
    base: int  # every change with seq > base and <= newest is held
    newest: int
    seqs: tuple[int, ...]
    stores: tuple[str | None, ...]
    items: tuple[str, ...]


_ROWS = "SELECT seq, kind, key, store_id, data FROM changes WHERE seq > ? AND seq <= ? ORDER BY seq"


class RecentChanges:
    """The last ``keep`` changes of one hub database, as JSON items."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._held: _Held | None = None
        self._lock = threading.Lock()

    def refresh(self, db: Db) -> None:
        """Load the changes committed since the last load (nothing when none were)."""
        newest = changes.last_seq(db)
        held = self._held
        # A newest seq below what is held is a reader that looked a moment before
        # another loaded more: nothing to do. Below everything held, the feed went back
        # (a database restored under a running hub: restart the hub after a restore);
        # start again from the table.
        if held is not None and held.base <= newest <= held.newest:
            return
        with self._lock:
            held = self._held
            if held is not None and held.base <= newest <= held.newest:
                return  # loaded meanwhile
            floor = max(0, newest - self.keep)
            if held is None or held.newest < floor or newest < held.base:
                held = _Held(floor, floor, (), (), ())
            rows = hdb.execute(db, _ROWS, [held.newest, newest]).fetchall()
            seqs = held.seqs + tuple(r[0] for r in rows)
            stores = held.stores + tuple(r[3] for r in rows)
            items = held.items + tuple(item_json(r[0], r[1], r[2], r[4]) for r in rows)
            base = held.base
            if len(seqs) > self.keep * 3 // 2:  # forget the oldest, keep ``keep``
                cut = len(seqs) - self.keep
                base = seqs[cut - 1]
                seqs, stores, items = seqs[cut:], stores[cut:], items[cut:]
            self._held = _Held(base, newest, seqs, stores, items)

    def page(self, db: Db, store_id: str, since: int, limit: int) -> dict[str, Any]:
        """A page of the feed for ``store_id`` after ``since``: ``{items, cursor, more,
        remaining}``, ``items`` being JSON texts; exactly what
        :func:`~app.hub.domain.changes.changes_since` answers."""
        limit = max(1, min(int(limit), changes.MAX_LIMIT))
        since = max(0, int(since))
        self.refresh(db)
        held = self._held
        if held is None or since < held.base:
            return _from_table(db, store_id, since, limit)
        picked: list[int] = []
        i, n = bisect.bisect_right(held.seqs, since), len(held.seqs)
        stores = held.stores
        while i < n and len(picked) < limit:
            owner = stores[i]
            if owner is None or owner == store_id:
                picked.append(i)
            i += 1
        if len(picked) == limit:
            cursor = held.seqs[picked[-1]]
            remaining = sum(1 for j in range(i, n) if stores[j] is None or stores[j] == store_id)
        else:
            cursor, remaining = max(since, held.newest), 0
        return {
            "items": [held.items[j] for j in picked],
            "cursor": str(cursor),
            "more": remaining > 0,
            "remaining": remaining,
        }


def _from_table(db: Db, store_id: str, since: int, limit: int) -> dict[str, Any]:
    page = changes.changes_since(db, store_id, since, limit, raw=True)
    return {
        "items": [item_json(c["seq"], c["kind"], c["key"], c["data"]) for c in page["changes"]],
        "cursor": page["cursor"],
        "more": page["more"],
        "remaining": page["remaining"],
    }


_recent: dict[str, RecentChanges] = {}
_recent_lock = threading.Lock()


def recent_for(target: Any) -> RecentChanges:
    """This process's held changes of a hub database (made on first use)."""
    key = str(target)
    with _recent_lock:
        found = _recent.get(key)
        if found is None:
            found = _recent[key] = RecentChanges()
        return found


__all__ = ["KEEP", "RecentChanges", "item_json", "recent_for"]
