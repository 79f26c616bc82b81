"""The store server's Flask application factory."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, render_template
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from app.core.qrphoto import MAX_PHOTO_BYTES
from app.store import storage
from app.store.domain.stock import self_store_id, stock_version
from app.store.sync import state
from app.store.views import (
    cart,
    counter,
    kiosk,
    kiosk_card,
    promotions,
    reservations,
    returns,
    scan,
    screen,
    staff,
)
from app.web import i18n, security
from app.web.factory import new_app
from app.web.htmx import htmx

DEFAULTS: dict[str, Any] = {
    "IDLE_SECONDS": 60,  # untouched this long, the kiosk asks "Toujours là ?"
    "IDLE_COUNTDOWN_SECONDS": 10,  # ... and then forgets the shopper
    "STOCK_POLL_SECONDS": 2,  # open pages check for stock changes this often
    "HEARTBEAT_SECONDS": 5,  # the screen's page beats this often (static/js/kiosk-heal.js)
    "STALE_AFTER_SECONDS": 120,  # older stock figures say "stock au 14:02"
    "STAFF_IDLE_SECONDS": 600,  # a staff session ends after 10 minutes without use
    "STORE_TIMEZONE": "Europe/Paris",
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_HTTPONLY": True,
    "WTF_CSRF_TIME_LIMIT": None,  # a kiosk page may stay open all day
    "PICTURE_CACHE": None,
    "RESERVATION_HOLD_MINUTES": 120,  # a reservation holds the stock this long
    # Where "send to my phone" points shoppers: the public web shop (default: the hub).
    "SHOP_URL": None,
    # Bodies: every kiosk and staff form is a few KB; only a QR photo is bigger (a phone
    # photo, plus the form around it). Refused from the headers, before anything is read.
    "MAX_CONTENT_LENGTH": 256 * security.KiB,
    "PHOTO_MAX_CONTENT_LENGTH": MAX_PHOTO_BYTES + 64 * security.KiB,
}
# Every blueprint of the store, one per user area: the list is the whole of them.
BLUEPRINTS: tuple[Blueprint, ...] = (
    kiosk.bp,
    screen.bp,
    staff.bp,
    counter.bp,
    returns.bp,
    scan.bp,
    reservations.bp,
    cart.bp,
    promotions.bp,
    kiosk_card.bp,
)
# What every page's template sees, whichever blueprint draws it: the store's name and
# idle timers, the staff member logged in, order-line names and times, the held count.
CONTEXT_PROCESSORS = (
    kiosk.kiosk_globals,
    staff.staff_globals,
    counter.counter_globals,
    reservations.reservation_globals,
    kiosk_card.recognised_globals,
)
# The views that take a photo of a QR code (qrphoto.decode_upload).
PHOTO_ENDPOINTS = frozenset({"counter.verify_photo", "cart.photo"})


def _body_limit(app: Flask, path: str, endpoint: str | None) -> int:
    """A request's body limit: photo-sized for a QR photo upload, small otherwise."""
    photo = endpoint in PHOTO_ENDPOINTS
    return app.config["PHOTO_MAX_CONTENT_LENGTH" if photo else "MAX_CONTENT_LENGTH"]


def session_cookie_name(data_dir: str) -> str:
    """This store server's own session cookie: ``kiosk_store_<digest>_session``, the digest
    of its data directory (resolved), so the name never changes for a data directory.

    Browsers keep cookies per host, not per port: the demo's store servers and its hub
    all live on 127.0.0.1, so each needs its own cookie name or logging into one would
    log the shopper or staff member out of the others. The store's id is not used: it
    arrives with the first sync, and a name that changed then would drop every kiosk
    cart and staff login at the next restart."""
    digest = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:10]
    return f"kiosk_store_{digest}_session"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the store server; settings come from ``test_config`` or ``KIOSK_*`` env vars."""
    app = new_app(__name__, DEFAULTS, "KIOSK", test_config)
    data_dir = app.config["DATA_DIR"]
    if app.config["SESSION_COOKIE_NAME"] == "session":  # Flask's default: not configured
        app.config["SESSION_COOKIE_NAME"] = session_cookie_name(data_dir)
    if not app.config["PICTURE_CACHE"]:
        app.config["PICTURE_CACHE"] = str(Path(data_dir) / "pictures")

    htmx.init_app(app)
    security.init_app(app)
    security.limit_bodies(app, _body_limit)
    i18n.init_app(app)

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def server_timing(response: Response) -> Response:
        # How long the app itself took: benchmarks read it, so does the browser's devtools.
        started = g.get("started")
        if started is not None:
            response.headers["Server-Timing"] = (
                f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
            )
        return response

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    for context_processor in CONTEXT_PROCESSORS:
        app.context_processor(context_processor)

    @app.get("/_ping")
    def ping() -> tuple[str, int, dict[str, str]]:
        """A bare route: the floor that benchmarks compare every page to."""
        return "ok", 200, {"Content-Type": "text/plain"}

    @app.get("/healthz")
    def healthz() -> Any:
        """Machine-readable health of this store server."""
        db = storage.get_db()
        return jsonify(
            ok=True,
            store_id=self_store_id(db),
            stock_version=stock_version(db),
            **state.snapshot(db, hub_configured=bool(app.config.get("HUB_URL"))),
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        """Friendly error pages in the kiosk's look, never a bare stack trace."""
        limit = None
        if exc.code == 413:  # say how much is allowed, in the shopper's units (Mio)
            limit = security.format_size(security.body_limit() or 0, _("MiB"), _("KiB"))
        page = render_template("kiosk/error.html", error=exc, limit=limit)
        return page, exc.code or 500, security.exception_headers(exc)

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> Any:
        """Log it, say something useful to the shopper, keep the kiosk usable."""
        app.logger.exception("unhandled error")
        return render_template("kiosk/error.html", error=None), 500

    return app
