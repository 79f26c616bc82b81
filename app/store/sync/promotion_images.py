"""Promotion images fetched from the hub (a signed GET) into the store's data directory,
so the kiosk serves banners from its own origin and shows them offline too.

Where the files live and which are missing or stale is the domain's
(app/store/domain/promotions.py); talking to the hub is here.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import requests
from sqlite_utils import Database

from app.core.signing import sign_request
from app.store.domain import promotions
from app.store.sync.client import HubError

log = logging.getLogger(__name__)

IMAGE_MAX_BYTES = 4 * 1024 * 1024  # a cleaned 1920x600 WebP is ~100-300 KB
RETRY_FAILED_S = 60.0
_failed: dict[tuple[str, str, str], float] = {}


def fetch_image(client: Any, promotion_id: str, image_hash: str, name: str) -> bytes:
    """GET one image from the hub, signed like every store request; raises HubError."""
    path = f"/api/v1/promotions/{promotion_id}/image/{name}?h={image_hash}"
    prepared = client.session.prepare_request(requests.Request("GET", client.base_url + path))
    prepared.headers.update(
        sign_request(client.store_id, client.secret, "GET", prepared.path_url, b"")
    )
    try:
        response = client.session.send(
            prepared, timeout=(client.connect_timeout, client.read_timeout), stream=True
        )
    except requests.RequestException as exc:
        raise HubError(f"cannot fetch a promotion image: {exc.__class__.__name__}") from exc
    with response:
        if response.status_code != 200:
            raise HubError(
                f"hub answered {response.status_code} for a promotion image",
                status=response.status_code,
            )
        if response.headers.get("Content-Type", "").split(";")[0] != "image/webp":
            raise HubError("a promotion image that is not WebP", status=502)
        blob = response.raw.read(IMAGE_MAX_BYTES + 1, decode_content=True)
    if len(blob) > IMAGE_MAX_BYTES or not blob.startswith(b"RIFF") or blob[8:12] != b"WEBP":
        raise HubError("a promotion image that is not a WebP file", status=502)
    return blob


def fetch_missing_images(db: Database, client: Any, data_dir: str | Path | None = None) -> int:
    """Fetch every image of a published promotion not cached yet; return how many.

    ``data_dir`` defaults to the directory of the database file. Never raises: a
    failure is logged and tried again a minute later; the banner shows its text
    meanwhile.
    """
    try:
        if data_dir is None:
            data_dir = Path(db.execute("PRAGMA database_list").fetchone()[2]).parent
        missing = promotions.missing_images(db, data_dir)
    except Exception:  # noqa: BLE001 - the sync goes on without images
        log.exception("cannot list the promotion images to fetch")
        return 0
    try:
        promotions.prune_images(db, data_dir)
    except Exception:  # noqa: BLE001 - disk housekeeping must not stop the sync
        log.exception("cannot prune old promotion images")
    fetched = 0
    now = time.monotonic()
    for key in missing:
        if key in _failed and now - _failed[key] < RETRY_FAILED_S:
            continue
        try:
            blob = fetch_image(client, *key)
            promotions.save_image(data_dir, *key, blob)
        except Exception as exc:  # noqa: BLE001 - one image must not stop the sync
            _failed[key] = now
            log.warning("promotion image %s/%s not fetched: %s", key[0], key[2], exc)
            continue
        _failed.pop(key, None)
        fetched += 1
    if fetched:
        # The kiosk's version includes whether each banner is here: open pages refresh.
        try:
            promotions.note_images_arrived(db)
        except Exception:  # noqa: BLE001 - the next poll sees the files anyway
            log.exception("cannot bump the promotion version")
    return fetched
