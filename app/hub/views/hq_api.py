"""The head-office JSON API (``/api/v1/hq``) for head-office tools, with bearer tokens.

``Authorization: Bearer hqt_...`` (made by ``kiosk hub hq-token create``). No token, an
unknown or revoked one: 401 ``{"error": "unauthorized"}``; a token whose role may not
do this: 403 ``{"error": "forbidden"}``. Not cookie-authenticated, so exempt from CSRF.
Every module of this API makes its blueprint with :func:`blueprint`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from app.hub.domain import fleet_dashboard, hq_users, promo_images
from app.hub.storage import get_db
from app.web.security import csrf


def _too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
    """A body past the upload limit: the same words as the console (an image too big)."""
    fields = {"image": promo_images.TOO_LARGE_MESSAGE}
    message = " ".join(f"{k} : {v}" for k, v in fields.items())
    return jsonify(error="too_large", message=message, fields=fields), 413


def blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint of the head-office API, under ``/api/v1/hq``: bearer tokens
    (:func:`token_required`), so exempt from CSRF; a body past the limit is refused in
    the API's words."""
    api = Blueprint(name, import_name, url_prefix="/api/v1/hq")
    csrf.exempt(api)
    api.register_error_handler(RequestEntityTooLarge, _too_large)
    return api


bp = blueprint("hq_api", __name__)


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def token_required(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """API views for a bearer token with one of ``roles`` (none: any; admin always).

    The token (``{id, name, role}``) is in ``g.hq_token`` for the view and for
    :func:`app.hub.views.hq.audit`.
    """
    hq_users.check_roles(roles)

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            token = hq_users.check_token(get_db(), _bearer())
            if token is None:
                response = jsonify(error="unauthorized", message="a valid bearer token is needed")
                response.headers["WWW-Authenticate"] = 'Bearer realm="hq"'
                return response, 401
            if roles and token["role"] != "admin" and token["role"] not in roles:
                return jsonify(error="forbidden", message="this token's role may not"), 403
            g.hq_token = token
            return view(*args, **kwargs)

        return wrapper

    return decorator


@bp.get("/stores")
@token_required("operations")
def stores() -> ResponseReturnValue:
    """Every store's fleet status (the dashboard's data) as JSON."""
    threshold = fleet_dashboard.offline_threshold(current_app.config)
    return jsonify(
        stores=fleet_dashboard.fleet_status(get_db(), threshold),
        offline_after_s=threshold,
    )
