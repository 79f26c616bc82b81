"""Promotion images for stores: ``GET /api/v1/promotions/<id>/image/<format>`` (signed).

A store fetches each image of a promotion it received on the feed once, keeps it on
disk and serves it to its kiosks from its own origin (docs/protocol.md, "Promotions").
"""

from __future__ import annotations

import re

from flask import current_app, request, send_file
from flask.typing import ResponseReturnValue

from app.hub.domain import promo_images
from app.hub.domain import promotions as promo
from app.hub.storage import get_db
from app.hub.views.api import blueprint, error, signed

_HASH = re.compile(r"[0-9a-f]{8,64}")

bp = blueprint("api_promotions", __name__)


@bp.get("/promotions/<promotion_id>/image/<name>")
@signed
def promotion_image(promotion_id: str, name: str) -> ResponseReturnValue:
    """One image of a published (or once published) promotion, as WebP; ``?h=`` asks for
    a given version, so a store behind by an edit still gets the image it was told of."""
    if name not in promo_images.FORMATS:
        return error(404, "unknown_format", f"formats: {', '.join(promo_images.FORMATS)}")
    asked = request.args.get("h")
    if asked is not None and not _HASH.fullmatch(asked):
        return error(400, "bad_request", "h must be 8 to 64 lower-case hex digits")
    try:
        row = promo.get_promotion(get_db(), promotion_id)
    except promo.NotFound:
        return error(404, "unknown_promotion", "no such promotion")
    if row["status"] == "draft":
        # Never announced: a store has no business asking for it.
        return error(404, "unknown_promotion", "no such promotion")
    wanted = asked or row["image_hash"]
    if not wanted or not _HASH.fullmatch(wanted):
        return error(404, "no_image", "this promotion has no image")
    path = promo_images.image_path(current_app.config["DATA_DIR"], promotion_id, wanted, name)
    if not path.is_file():
        return error(404, "no_image", "no such image for this promotion")
    return send_file(path, mimetype=promo_images.MIME, etag=wanted + "-" + name)
