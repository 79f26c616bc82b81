"""Promotions in the store: kept from the hub's feed, in force by this store's clock.

The hub announces every published, edited or unpublished promotion to every store
(``promotion`` changes, docs/protocol.md); :func:`apply_promotion_changes` keeps the
latest revision of each, checked and cleaned. What is in force is decided here, with
the local clock, every time a price or the attract screen is shown: a promotion
starts and ends on time even while the store cannot reach the hub.

Banner images are fetched from the hub once (signed GET, app/store/sync/promotion_images.py)
into the data directory and served by the kiosk from its own origin, so they show
offline too; where they live and which are missing or stale is decided here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from app.core import clock
from app.core import db as dbmod
from app.core.pricing import Rule, rule_from_data
from app.store.domain.stock import self_store_id

VERSION_KEY = "promotion_version"
IMAGE_FORMATS = ("banner", "tile")
TITLE_MAX = 80
TEXT_MAX = 280
MAX_BANNERS = 6  # the attract screen's slots
_ID = re.compile(r"pr-[0-9a-z]{6,32}")
_HASH = re.compile(r"[0-9a-f]{8,64}")
_UPSERT = """INSERT INTO promotions (id, revision, status, starts_at, ends_at, data, received_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, status = excluded.status,
        starts_at = excluded.starts_at, ends_at = excluded.ends_at, data = excluded.data,
        received_at = excluded.received_at
    WHERE excluded.revision >= promotions.revision"""


# --- From the feed -----------------------------------------------------------------


def _plain(value: Any, limit: int, *, multiline: bool = False) -> str:
    """Text a kiosk page can always show: no control or invisible characters, capped.

    The hub refuses markup already; a page escapes whatever it shows anyway. This is
    the last line for a hub adapter that checks less.
    """
    if not isinstance(value, str):
        return ""
    keep = "\n" if multiline else ""
    text = "".join(
        c if (unicodedata.category(c)[0] != "C" or c in keep) else " "
        for c in unicodedata.normalize("NFC", value)
    )
    return text.strip()[:limit]


def clean(data: dict[str, Any]) -> dict[str, Any]:
    """A promotion's wire data checked and cleaned for this store; raises ValueError.

    Unknown fields are dropped; the rule must be one :func:`rule_from_data` reads.
    """
    if not isinstance(data, dict) or not _ID.fullmatch(str(data.get("id", ""))):
        raise ValueError("not a promotion id")
    title = data.get("title") if isinstance(data.get("title"), dict) else {}
    text = data.get("text") if isinstance(data.get("text"), dict) else {}
    out = {
        "id": data["id"],
        "revision": int(data["revision"]),
        "status": data["status"] if data.get("status") == "published" else "unpublished",
        "title": {lang: _plain(title.get(lang), TITLE_MAX) for lang in ("fr", "en")},
        "text": {lang: _plain(text.get(lang), TEXT_MAX, multiline=True) for lang in ("fr", "en")},
        "rule": data["rule"],
        "priority": int(data.get("priority") or 0),
        "starts_at": clock.iso(clock.parse_iso(data["starts_at"])),
        "ends_at": clock.iso(clock.parse_iso(data["ends_at"])),
        "timezone": _plain(data.get("timezone"), 64),
        "stores": data.get("stores"),
        "image": None,
    }
    stores = out["stores"]
    if stores is not None and not (
        isinstance(stores, list) and all(isinstance(s, str) for s in stores)
    ):
        raise ValueError("stores must be null or a list of store ids")
    rule = out["rule"]
    if not isinstance(rule, dict):
        raise ValueError("no rule")
    out["rule"] = {
        "kind": rule.get("kind"),
        "value": int(rule.get("value")),
        "nth": int(rule.get("nth") or 2),
        "scope": rule.get("scope") or "all",
        "targets": [str(t) for t in rule.get("targets") or []],
        "min_qty": int(rule.get("min_qty") or 1),
    }
    rule_from_data(out)  # raises on a rule this store cannot price with
    image = data.get("image")
    if isinstance(image, dict) and _HASH.fullmatch(str(image.get("hash", ""))):
        formats = image.get("formats") if isinstance(image.get("formats"), dict) else {}
        out["image"] = {
            "hash": image["hash"],
            "formats": {
                name: {"sha256": str(fmt.get("sha256", ""))[:64]}
                for name, fmt in formats.items()
                if name in IMAGE_FORMATS and isinstance(fmt, dict)
            },
        }
    return out


def apply_promotion_changes(db: Database, changes: list[dict], own: str | None) -> int:
    """Feed applier for ``promotion`` changes: keep each promotion's newest revision."""
    now = clock.now_iso()
    rows = []
    for change in changes:
        data = clean(change["data"])
        rows.append(
            (
                data["id"],
                data["revision"],
                data["status"],
                data["starts_at"],
                data["ends_at"],
                json.dumps(data, ensure_ascii=False, separators=(",", ":")),
                now,
            )
        )
    db.conn.executemany(_UPSERT, rows)
    return len(rows)


# --- In force ----------------------------------------------------------------------


def in_force(db: Database, now: datetime) -> list[dict[str, Any]]:
    """Published promotions for this store in force at ``now``, best first."""
    stamp = clock.iso(now)
    own = self_store_id(db)
    rows = db.execute(
        "SELECT data FROM promotions WHERE status = 'published' AND starts_at <= ? AND ends_at > ?",
        [stamp, stamp],
    ).fetchall()
    out = []
    for (text,) in rows:
        data = json.loads(text)
        rule = rule_from_data(data)
        # Second-precision columns pre-select; the rule decides to the microsecond.
        if rule.active_at(now) and rule.for_store(own):
            out.append(data)
    out.sort(key=lambda d: (-d["priority"], d["starts_at"], d["id"]))
    return out


def active_rules(db: Database, now: datetime | None = None) -> list[Rule]:
    """The price rules in force in this store at ``now`` (default: the local clock)."""
    return [rule_from_data(d) for d in in_force(db, now or clock.utcnow())]


def images_dir(data_dir: str | Path) -> Path:
    """Where this store keeps the promotion images it fetched."""
    return Path(data_dir) / "promotions"


def image_path(data_dir: str | Path, promotion_id: str, image_hash: str, name: str) -> Path:
    """One cached image file (the hash in the path: a new image is a new file)."""
    return images_dir(data_dir) / promotion_id / image_hash / f"{name}.webp"


def banners(
    db: Database, now: datetime | None = None, lang: str = "fr", data_dir: str | Path | None = None
) -> list[dict[str, Any]]:
    """What the attract screen shows: ``{id, title, text, image}`` per promotion in
    force, best first; ``image`` is the banner's hash when the file is here, else None."""
    out = []
    for d in in_force(db, now or clock.utcnow())[:MAX_BANNERS]:
        image = d.get("image")
        has_file = bool(
            image
            and data_dir is not None
            and image_path(data_dir, d["id"], image["hash"], "banner").is_file()
        )
        out.append(
            {
                "id": d["id"],
                "title": d["title"].get(lang) or d["title"]["fr"],
                "text": d["text"].get(lang) or d["text"]["fr"],
                "image": image["hash"] if has_file else None,
            }
        )
    return out


def version(db: Database, now: datetime | None = None, data_dir: str | Path | None = None) -> str:
    """What open kiosk pages compare: changes when a promotion changes, when the set in
    force changes by the clock (start, end), and when a banner's image arrives."""
    now = now or clock.utcnow()
    counter = dbmod.get_meta(db, VERSION_KEY, "0") or "0"
    live = in_force(db, now)
    if not live:
        return f"{counter}-0"
    parts = []
    for d in live:
        image = d.get("image")
        here = bool(
            image
            and data_dir is not None
            and image_path(data_dir, d["id"], image["hash"], "banner").is_file()
        )
        parts.append(f"{d['id']}:{d['revision']}:{int(here)}")
    digest = hashlib.sha1("|".join(parts).encode()).hexdigest()[:10]
    return f"{counter}-{digest}"


# --- Images kept on disk -------------------------------------------------------------


def missing_images(db: Database, data_dir: str | Path) -> list[tuple[str, str, str]]:
    """(promotion id, hash, format) of published images not cached yet."""
    out = []
    for (text,) in db.execute(
        "SELECT data FROM promotions WHERE status = 'published' AND ends_at > ?",
        [clock.now_iso()],
    ).fetchall():
        data = json.loads(text)
        image = data.get("image")
        if not image:
            continue
        for name in image.get("formats") or {}:
            if not image_path(data_dir, data["id"], image["hash"], name).is_file():
                out.append((data["id"], image["hash"], name))
    return out


def prune_images(db: Database, data_dir: str | Path) -> int:
    """Delete cached images no banner will show again (promotion ended, unpublished, or
    its image replaced); return how many directories went. A kiosk box's disk is small."""
    keep: set[tuple[str, str]] = set()
    for (text,) in db.execute(
        "SELECT data FROM promotions WHERE status = 'published' AND ends_at > ?",
        [clock.now_iso()],
    ).fetchall():
        data = json.loads(text)
        if data.get("image"):
            keep.add((data["id"], data["image"]["hash"]))
    root = images_dir(data_dir)
    removed = 0
    if not root.is_dir():
        return 0
    for promo_dir in root.iterdir():
        for hash_dir in list(promo_dir.iterdir()) if promo_dir.is_dir() else []:
            if (promo_dir.name, hash_dir.name) not in keep:
                shutil.rmtree(hash_dir, ignore_errors=True)
                removed += 1
        with contextlib.suppress(OSError):
            promo_dir.rmdir()  # only when empty
    return removed


def save_image(
    data_dir: str | Path, promotion_id: str, image_hash: str, name: str, blob: bytes
) -> Path:
    """Write one image atomically (a kiosk never reads half a file)."""
    path = image_path(data_dir, promotion_id, image_hash, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, path)
    return path


def note_images_arrived(db: Database) -> None:
    """Bump the version open kiosk pages compare (it includes whether each banner's
    image is here): they refresh and show the images just saved."""
    with dbmod.write(db):
        value = int(dbmod.get_meta(db, VERSION_KEY, "0") or 0)
        dbmod.set_meta(db, VERSION_KEY, str(value + 1))
