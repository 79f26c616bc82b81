"""Promotions through the head-office JSON API (``/api/v1/hq/promotions``, bearer token).

The same domain functions, checks and messages as the console (app/hub/views/hq_promotions.py),
for a marketing system that pushes promotions without the console. Refusals are
``{"error", "message", "fields"}`` with ``fields`` naming each field at fault.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from app.core import clock, jsonsafe
from app.core.text import clean_text
from app.hub.domain import promo_images
from app.hub.domain import promotions as promo
from app.hub.domain.promotion_validation import EDITABLE, PromotionError
from app.hub.storage import get_db
from app.hub.views.hq import audit
from app.hub.views.hq_api import blueprint, token_required

ROLES = ("marketing",)
PHASES = ("draft", "scheduled", "live", "ended", "unpublished")  # ?phase= (promo.phase)
FIELDS = set(EDITABLE) | {"starts_at", "ends_at"}

bp = blueprint("hq_promotions_api", __name__)


def _actor() -> str:
    token = g.get("hq_token") or {}
    return f"token:{token.get('name') or token.get('id') or '?'}"


def _invalid(
    fields: dict[str, str], code: str = "invalid", status: int = 422
) -> ResponseReturnValue:
    message = " ".join(f"{k} : {v}" for k, v in fields.items())
    return jsonify(error=code, message=message, fields=fields), status


def _not_found(promotion_id: str) -> ResponseReturnValue:
    return jsonify(error="not_found", message=f"aucune promotion {promotion_id[:40]}"), 404


def _body() -> dict[str, Any] | ResponseReturnValue:
    """The JSON object sent, only with fields a promotion has."""
    try:
        # Bounded depth, no NaN; 1e400 or 10**400 stay in place for their field's "out
        # of range" (a 422 naming it) rather than failing the whole body.
        body = jsonsafe.loads(request.get_data(cache=True) or b"null", keep_bad_numbers=True)
    except ValueError as exc:
        return jsonify(
            error="bad_request", message=f"le corps n'est pas du JSON valide : {exc}"
        ), 400
    if not isinstance(body, dict):
        return jsonify(error="bad_request", message="un objet JSON est attendu"), 400
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        return _invalid({promo_field(k): "Champ inconnu." for k in unknown[:20]})
    return body


def promo_field(name: str) -> str:
    """A field name sent, fit to be quoted back (short, no control characters)."""
    return clean_text(name, 60)


@bp.get("/promotions")
@token_required(*ROLES)
def list_promotions() -> ResponseReturnValue:
    """Every promotion, with its phase (draft, scheduled, live, ended, unpublished)."""
    now = clock.utcnow()
    phase = request.args.get("phase")
    if phase is not None and phase not in PHASES:
        message = f"phase must be one of {', '.join(PHASES)}"
        return jsonify(error="bad_request", message=message), 400
    rows = promo.list_promotions(get_db(), now, phase)
    return jsonify(promotions=[promo.api_view(r, now) for r in rows])


@bp.post("/promotions")
@token_required(*ROLES)
def create_promotion() -> ResponseReturnValue:
    """Create a draft; 201 with it, or 422 naming the fields at fault."""
    body = _body()
    if not isinstance(body, dict):
        return body
    try:
        row = promo.create(get_db(), body, _actor())
    except PromotionError as exc:
        return _invalid(exc.fields)
    audit("promotion.created", {"promotion_id": row["id"], "title": row["title_fr"], "via": "api"})
    response = jsonify(promotion=promo.api_view(row))
    response.headers["Location"] = f"{bp.url_prefix}/promotions/{row['id']}"
    return response, 201


@bp.get("/promotions/<promotion_id>")
@token_required(*ROLES)
def get_promotion(promotion_id: str) -> ResponseReturnValue:
    """One promotion and its history."""
    db = get_db()
    try:
        row = promo.get_promotion(db, promotion_id)
    except promo.NotFound:
        return _not_found(promotion_id)
    return jsonify(promotion=promo.api_view(row), history=promo.history(db, promotion_id))


@bp.patch("/promotions/<promotion_id>")
@token_required(*ROLES)
def patch_promotion(promotion_id: str) -> ResponseReturnValue:
    """Change some fields; a published promotion reaches the stores again at once."""
    body = _body()
    if not isinstance(body, dict):
        return body
    try:
        before = promo.get_promotion(get_db(), promotion_id)
        row = promo.update(get_db(), promotion_id, body, _actor())
    except promo.NotFound:
        return _not_found(promotion_id)
    except PromotionError as exc:
        return _invalid(exc.fields)
    if row["revision"] != before["revision"]:
        audit(
            "promotion.updated",
            {"promotion_id": promotion_id, "revision": row["revision"], "via": "api"},
        )
    return jsonify(promotion=promo.api_view(row))


@bp.post("/promotions/<promotion_id>/publish")
@token_required(*ROLES)
def publish_promotion(promotion_id: str) -> ResponseReturnValue:
    """Publish to the targeted stores."""
    try:
        row = promo.publish(get_db(), promotion_id, _actor())
    except promo.NotFound:
        return _not_found(promotion_id)
    except PromotionError as exc:
        return _invalid(exc.fields, code=exc.code, status=409)
    audit(
        "promotion.published",
        {"promotion_id": promotion_id, "revision": row["revision"], "via": "api"},
    )
    return jsonify(promotion=promo.api_view(row))


@bp.post("/promotions/<promotion_id>/unpublish")
@token_required(*ROLES)
def unpublish_promotion(promotion_id: str) -> ResponseReturnValue:
    """Withdraw from every store."""
    try:
        row = promo.unpublish(get_db(), promotion_id, _actor())
    except promo.NotFound:
        return _not_found(promotion_id)
    audit(
        "promotion.unpublished",
        {"promotion_id": promotion_id, "revision": row["revision"], "via": "api"},
    )
    return jsonify(promotion=promo.api_view(row))


@bp.post("/promotions/<promotion_id>/image")
@token_required(*ROLES)
def upload_image(promotion_id: str) -> ResponseReturnValue:
    """Set the image: multipart field ``image`` (or the raw image as the body)."""
    upload = request.files.get("image")
    if upload is not None:
        data = upload.stream.read(promo_images.MAX_BYTES + 1)
    elif request.mimetype.startswith("image/"):
        data = request.get_data()
    else:
        return _invalid({"image": "Envoyez l'image en multipart/form-data, champ « image »."})
    try:
        row = promo.set_image(
            get_db(), current_app.config["DATA_DIR"], promotion_id, data, _actor()
        )
    except promo.NotFound:
        return _not_found(promotion_id)
    except promo_images.ImageRejected as exc:
        return _invalid(
            {"image": exc.message}, code=exc.code, status=413 if exc.code == "too_large" else 422
        )
    audit(
        "promotion.image", {"promotion_id": promotion_id, "image": row["image_hash"], "via": "api"}
    )
    return jsonify(promotion=promo.api_view(row))
