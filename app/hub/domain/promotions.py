"""Promotions at the hub: drafts, publishing to stores, the records and their history.

A promotion is a banner (titles and texts in French and English, an optional image)
and one price rule (app/core/pricing.py says what each kind does), a schedule entered in a
time zone and kept in UTC (:mod:`app.hub.domain.promotion_schedule`), target stores
(None: all) and a priority; what head office submits is checked by
:mod:`app.hub.domain.promotion_validation`. Drafts stay at the hub; publishing,
unpublishing and every edit of a published promotion append one ``promotion`` change to
the feed for every store (``store_id`` NULL): each store keeps the promotions that name
it, or all of them when ``stores`` is null, and evaluates the schedule with its own
clock, so a promotion ends on time even in an offline store.

Every change is recorded in ``promotion_history`` (who, when, which fields, old and
new values). Messages for people are in French, like the console that shows them.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from app.core import clock
from app.core.pricing import Rule, rule_from_data
from app.core.protocol import CHANGE_PROMOTION
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import promo_images
from app.hub.domain.changes import append_change
from app.hub.domain.promotion_schedule import from_instants
from app.hub.domain.promotion_validation import EDITABLE, PromotionError, validate
from app.hub.domain.registry import ID_ALPHABET


class NotFound(LookupError):
    """No promotion with that id."""


def new_promotion_id() -> str:
    """A random id such as ``pr-4x8vd0k2mq7h`` (60 random bits, never sequential)."""
    return "pr-" + "".join(secrets.choice(ID_ALPHABET) for _ in range(12))


# --- Rows, wire form, rules --------------------------------------------------------


def _row(db: Db, promotion_id: str) -> dict[str, Any]:
    row = hdb.one(db, "SELECT * FROM promotions WHERE id = ?", [promotion_id])
    if row is None:
        raise NotFound(promotion_id)
    return _decode(row)


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["targets"] = json.loads(row["targets"] or "[]")
    row["stores"] = json.loads(row["stores"]) if row["stores"] is not None else None
    row["image_formats"] = json.loads(row["image_formats"]) if row["image_formats"] else None
    return row


def get_promotion(db: Db, promotion_id: str) -> dict[str, Any]:
    """One promotion as a dict (targets and stores decoded); raises NotFound."""
    return _row(db, promotion_id)


def phase(row: dict[str, Any], now: datetime) -> str:
    """What people see: draft, scheduled, live, ended or unpublished."""
    if row["status"] != "published":
        return row["status"]
    if now < clock.parse_iso(row["starts_at"]):
        return "scheduled"
    if now >= clock.parse_iso(row["ends_at"]):
        return "ended"
    return "live"


def list_promotions(
    db: Db, now: datetime | None = None, phase_filter: str | None = None
) -> list[dict[str, Any]]:
    """Every promotion, newest change first, each with its ``phase``."""
    now = now or clock.utcnow()
    rows = [
        _decode(r) for r in hdb.rows(db, "SELECT * FROM promotions ORDER BY updated_at DESC, id")
    ]
    for r in rows:
        r["phase"] = phase(r, now)
    if phase_filter:
        rows = [r for r in rows if r["phase"] == phase_filter]
    return rows


def image_url(promotion_id: str, image_hash: str, name: str) -> str:
    """Where a store fetches one image (signed GET; the hash makes it immutable)."""
    return f"/api/v1/promotions/{promotion_id}/image/{name}?h={image_hash}"


def wire(row: dict[str, Any]) -> dict[str, Any]:
    """A promotion as the change feed and the API carry it (docs/protocol.md)."""
    image = None
    if row.get("image_hash"):
        image = {
            "hash": row["image_hash"],
            "formats": {
                name: {**fmt, "url": image_url(row["id"], row["image_hash"], name)}
                for name, fmt in (row.get("image_formats") or {}).items()
            },
        }
    return {
        "id": row["id"],
        "revision": row["revision"],
        "status": row["status"],
        "title": {"fr": row["title_fr"], "en": row["title_en"]},
        "text": {"fr": row["text_fr"], "en": row["text_en"]},
        "rule": {
            "kind": row["kind"],
            "value": row["value"],
            "nth": row["nth"],
            "scope": row["scope"],
            "targets": list(row["targets"]),
            "min_qty": row["min_qty"],
        },
        "priority": row["priority"],
        "starts_at": row["starts_at"],
        "ends_at": row["ends_at"],
        "starts_local": row["starts_local"],
        "ends_local": row["ends_local"],
        "timezone": row["timezone"],
        "stores": row["stores"],
        "image": image,
    }


def api_view(row: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The head-office API's view: the wire form plus who and when."""
    out = wire(row)
    out["phase"] = phase(row, now or clock.utcnow())
    for key in ("created_by", "updated_by", "created_at", "updated_at", "published_at"):
        out[key] = row.get(key)
    return out


def active_rules(db: Db, store_id: str | None, now: datetime | None = None) -> list[Rule]:
    """The price rules of the published promotions in force for ``store_id`` at ``now``
    (the web shop's; a store builds the same rules from the same wire data)."""
    now = now or clock.utcnow()
    stamp = clock.iso(now)
    rows = hdb.rows(
        db,
        "SELECT * FROM promotions WHERE status = 'published' AND starts_at <= ? AND ends_at > ?",
        [stamp, stamp],
    )
    rules = [rule_from_data(wire(_decode(r))) for r in rows]
    return [r for r in rules if r.for_store(store_id) and r.active_at(now)]


# --- Changes -----------------------------------------------------------------------


def _history(db: Db, row: dict[str, Any], actor: str, action: str, changes: dict[str, Any]) -> None:
    hdb.execute(
        db,
        "INSERT INTO promotion_history (promotion_id, revision, at, actor, action, changes) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            row["id"],
            row["revision"],
            clock.now_iso(),
            actor,
            action,
            json.dumps(changes, ensure_ascii=False, sort_keys=True),
        ],
    )


def _save(db: Db, row: dict[str, Any]) -> None:
    values = dict(row)
    values["targets"] = json.dumps(row["targets"])
    values["stores"] = None if row["stores"] is None else json.dumps(row["stores"])
    values["image_formats"] = (
        json.dumps(row["image_formats"], sort_keys=True) if row.get("image_formats") else None
    )
    values = {k: v for k, v in values.items() if k != "phase"}
    hdb.upsert(db, "promotions", values, conflict=["id"])


def _announce(db: Db, row: dict[str, Any]) -> None:
    """Tell every store (they filter by ``stores`` themselves)."""
    append_change(db, CHANGE_PROMOTION, row["id"], wire(row))


def create(db: Db, data: dict[str, Any], actor: str) -> dict[str, Any]:
    """Create a draft from ``data``; raises PromotionError. Returns the promotion."""
    clean = validate(db, from_instants(data))
    now = clock.now_iso()
    with hdb.write(db):
        while True:
            pid = new_promotion_id()
            if hdb.scalar(db, "SELECT 1 FROM promotions WHERE id = ?", [pid]) is None:
                break
        row = {
            "id": pid,
            "status": "draft",
            **clean,
            "image_hash": None,
            "image_formats": None,
            "revision": 1,
            "created_by": actor,
            "updated_by": actor,
            "created_at": now,
            "updated_at": now,
            "published_at": None,
        }
        _save(db, row)
        _history(db, row, actor, "created", {k: [None, clean[k]] for k in EDITABLE})
    return _row(db, pid)


def update(db: Db, promotion_id: str, data: dict[str, Any], actor: str) -> dict[str, Any]:
    """Change some fields (the others are kept); a published promotion is re-announced."""
    with hdb.write(db):
        row = _row(db, promotion_id)
        merged = {k: row[k] for k in EDITABLE}
        # Instants given (API) become local times in the zone the promotion will have.
        incoming = from_instants({"timezone": data.get("timezone", row["timezone"]), **data})
        merged.update({k: v for k, v in incoming.items() if k in EDITABLE})
        clean = validate(db, merged)
        changed = {k: [row[k], clean[k]] for k in EDITABLE if row[k] != clean[k]}
        if not changed:
            return row
        row.update(clean)
        row["revision"] += 1
        row["updated_by"] = actor
        row["updated_at"] = clock.now_iso()
        _save(db, row)
        _history(db, row, actor, "updated", changed)
        if row["status"] == "published":
            _announce(db, row)
    return _row(db, promotion_id)


def set_image(
    db: Db, data_dir: str | Path, promotion_id: str, upload: bytes, actor: str
) -> dict[str, Any]:
    """Check, clean and store an uploaded image; raises ImageRejected or NotFound."""
    _row(db, promotion_id)  # 404 before any decoding work
    images = promo_images.process(upload)
    described = promo_images.store(data_dir, promotion_id, images)
    with hdb.write(db):
        row = _row(db, promotion_id)
        if row["image_hash"] == described["hash"]:
            return row
        old = row["image_hash"]
        row["image_hash"] = described["hash"]
        row["image_formats"] = described["formats"]
        row["revision"] += 1
        row["updated_by"] = actor
        row["updated_at"] = clock.now_iso()
        _save(db, row)
        _history(db, row, actor, "image", {"image": [old, described["hash"]]})
        if row["status"] == "published":
            _announce(db, row)
    return _row(db, promotion_id)


def remove_image(db: Db, promotion_id: str, actor: str) -> dict[str, Any]:
    """Drop the image (the banner shows its text only)."""
    with hdb.write(db):
        row = _row(db, promotion_id)
        if not row["image_hash"]:
            return row
        old = row["image_hash"]
        row.update(
            image_hash=None,
            image_formats=None,
            revision=row["revision"] + 1,
            updated_by=actor,
            updated_at=clock.now_iso(),
        )
        _save(db, row)
        _history(db, row, actor, "image", {"image": [old, None]})
        if row["status"] == "published":
            _announce(db, row)
    return _row(db, promotion_id)


def publish(db: Db, promotion_id: str, actor: str, now: datetime | None = None) -> dict[str, Any]:
    """Publish to the targeted stores (again, after an unpublish). Raises PromotionError
    when it has already ended: nobody would ever see it."""
    now = now or clock.utcnow()
    with hdb.write(db):
        row = _row(db, promotion_id)
        if row["status"] == "published":
            return row
        if clock.parse_iso(row["ends_at"]) <= now:
            raise PromotionError(
                {
                    "ends_local": "Cette promotion est déjà terminée : repoussez sa fin avant de "
                    "la publier."
                },
                code="ended",
            )
        before = row["status"]
        row.update(
            status="published",
            revision=row["revision"] + 1,
            updated_by=actor,
            updated_at=clock.now_iso(),
            published_at=clock.iso(now),
        )
        _save(db, row)
        _history(db, row, actor, "published", {"status": [before, "published"]})
        _announce(db, row)
    return _row(db, promotion_id)


def unpublish(db: Db, promotion_id: str, actor: str) -> dict[str, Any]:
    """Withdraw from every store at once (kept at the hub, with its history)."""
    with hdb.write(db):
        row = _row(db, promotion_id)
        if row["status"] != "published":
            return row
        row.update(
            status="unpublished",
            revision=row["revision"] + 1,
            updated_by=actor,
            updated_at=clock.now_iso(),
        )
        _save(db, row)
        _history(db, row, actor, "unpublished", {"status": ["published", "unpublished"]})
        _announce(db, row)
    return _row(db, promotion_id)


def history(db: Db, promotion_id: str) -> list[dict[str, Any]]:
    """Every change of a promotion, newest first."""
    rows = hdb.rows(
        db,
        "SELECT revision, at, actor, action, changes FROM promotion_history "
        "WHERE promotion_id = ? ORDER BY id DESC",
        [promotion_id],
    )
    for r in rows:
        r["changes"] = json.loads(r["changes"])
    return rows


def image_file(data_dir: str | Path, row: dict[str, Any], name: str) -> Path | None:
    """The stored file of one format of the promotion's current image, if any."""
    if not row.get("image_hash") or name not in promo_images.FORMATS:
        return None
    path = promo_images.image_path(data_dir, row["id"], row["image_hash"], name)
    return path if path.is_file() else None
