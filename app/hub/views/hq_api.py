"""The head-office JSON API (``/api/v1/hq``) for head-office tools, with bearer tokens.

``Authorization: Bearer hqt_...`` (made by ``kiosk hub hq-token create``). No token, an
unknown or revoked one: 401 ``{"error": "unauthorized"}``; a token whose role may not
do this: 403 ``{"error": "forbidden"}``. Not cookie-authenticated, so exempt from CSRF.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from app.hub.domain import fleet
from app.hub.domain import hq_users as hqauth
from app.hub.storage import get_db
from app.web.security import csrf

bp = Blueprint("hq_api", __name__, url_prefix="/api/v1/hq")
csrf.exempt(bp)


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def token_required(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """API views for a bearer token with one of ``roles`` (none: any; admin always).

    The token (``{id, name, role}``) is in ``g.hq_token`` for the view and for
    :func:`app.hub.hq.audit`.
    """
    hqauth.check_roles(roles)

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            token = hqauth.check_token(get_db(), _bearer())
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
    threshold = fleet.offline_threshold(current_app.config)
    return jsonify(
        stores=fleet.fleet_status(get_db(), threshold),
        offline_after_s=threshold,
    )
