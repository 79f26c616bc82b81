"""A store keeps on disk only the promotion images a banner may still show."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from app.core import clock
from app.store.domain import promotions

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock


def _promotion(db, pid: str, status: str, ends_in: timedelta, image_hash: str) -> None:
    now = clock.utcnow()
    data = {"id": pid, "image": {"hash": image_hash, "formats": {"banner": {}, "tile": {}}}}
    db["promotions"].insert(
        {
            "id": pid,
            "revision": 1,
            "status": status,
            "starts_at": clock.iso(now - timedelta(days=1)),
            "ends_at": clock.iso(now + ends_in),
            "data": json.dumps(data),
            "received_at": clock.iso(now),
        }
    )


def _cache(data_dir, pid: str, image_hash: str) -> None:
    for name in ("banner", "tile"):
        path = promotions.image_path(data_dir, pid, image_hash, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF....WEBP")


def test_ended_unpublished_and_replaced_images_are_deleted(store_db, store_data):
    _promotion(store_db, "pr-live01", "published", timedelta(days=2), "aaaa1111")
    _promotion(store_db, "pr-ended1", "published", -timedelta(hours=1), "bbbb2222")
    _promotion(store_db, "pr-gone01", "unpublished", timedelta(days=2), "cccc3333")
    for pid, image_hash in [
        ("pr-live01", "aaaa1111"),
        ("pr-live01", "0ld00000"),
        ("pr-ended1", "bbbb2222"),
        ("pr-gone01", "cccc3333"),
    ]:
        _cache(store_data, pid, image_hash)
    assert promotions.prune_images(store_db, store_data) == 3
    root = promotions.images_dir(store_data)
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*.webp"))
    assert left == ["pr-live01/aaaa1111/banner.webp", "pr-live01/aaaa1111/tile.webp"]
    assert sorted(p.name for p in root.iterdir()) == ["pr-live01"]
    assert promotions.prune_images(store_db, store_data) == 0
