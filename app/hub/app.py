"""The hub: the central back-end that every store syncs with (docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Request, Response, jsonify, render_template, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from app.hub import storage
from app.hub.domain import keys, notifications, order_people, pii, registry
from app.hub.storage import get_db
from app.hub.views import (
    account,
    account_prefs,
    api,
    api_cards,
    api_promotions,
    card,
    hq,
    hq_api,
    hq_customers,
    hq_fleet,
    hq_loyalty,
    hq_offers,
    hq_promotions,
    hq_promotions_api,
    shop,
    webshop,
    webshop_cart,
    webshop_catalog,
    webshop_checkout,
)
from app.web import i18n, security
from app.web.factory import new_app
from app.web.htmx import htmx
from app.web.security import csrf

DEFAULTS: dict[str, Any] = {
    # Body limits, refused from the headers before anything is read (security.limit_bodies).
    # The sync API: a batch of 500 transactions is ~150 KB; far bigger is not a store.
    "MAX_CONTENT_LENGTH": 4 * 1024 * 1024,
    "POLL_INTERVAL_S": 0.15,
    # Head office uploads promotion images of up to 10 MB, plus the form around them.
    "HQ_MAX_CONTENT_LENGTH": 11 * 1024 * 1024,
    # The web shop's forms (a cart line, a checkout) are a few KB.
    "SHOP_MAX_CONTENT_LENGTH": 256 * 1024,
    # A shop page left open on a phone, or a console tab, must still submit: the CSRF
    # token is bound to the session (which expires on its own), not to a clock.
    "WTF_CSRF_TIME_LIMIT": None,
    # Flask's own defaults hold these keys (SameSite None), so they are set, not defaulted.
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_HTTPONLY": True,
    # Its own name: the demo's stores share 127.0.0.1 with the hub (cookies ignore ports).
    "SESSION_COOKIE_NAME": "kiosk_hub_session",
    # The zone every page reads times in (app/web/i18n.py store_timezone): the stores'.
    "STORE_TIMEZONE": notifications.STORE_TIMEZONE,
    # Reverse proxies in front of the hub (KIOSK_HUB_TRUSTED_PROXIES): 0 trusts no
    # X-Forwarded-For header; N takes the client's address from the header the Nth proxy
    # wrote, so per-client limits (sign-in codes, console logins) hold behind a proxy.
    "TRUSTED_PROXIES": 0,
}


# Every blueprint of the hub, registered in this order. Each area's module makes its
# blueprints with the area's prefix and hooks: api.blueprint (/api/v1, signed by a
# store, exempt from CSRF), hq.blueprint (/hq, the console's error pages),
# hq_api.blueprint (/api/v1/hq, bearer tokens, exempt from CSRF), webshop.blueprint
# (/shop, pages for people).
BLUEPRINTS: tuple[Blueprint, ...] = (
    api.bp,
    api_cards.bp,
    api_promotions.bp,
    shop.bp,
    webshop_catalog.bp,
    webshop_cart.bp,
    webshop_checkout.bp,
    account.bp,
    account_prefs.bp,
    card.bp,
    hq.bp,
    hq_customers.bp,
    hq_fleet.bp,
    hq_loyalty.bp,
    hq_offers.bp,
    hq_promotions.bp,
    hq_api.bp,
    hq_promotions_api.bp,
)
# What templates see: the web shop's cart badge and language (only on pages under
# /shop/; elsewhere it adds nothing), and the console's labels, endpoints and its user
# and role helpers (on every page whatever its path; hq_user and hq_has_role are
# functions, so the session is read only when a template calls them).
CONTEXT_PROCESSORS = (webshop.shop_context, hq.console_context)
# Jinja filters for every hub template (web shop and console alike), by name.
TEMPLATE_FILTERS = {"euros": shop.euros, "fr_datetime": shop.fr_datetime}


def _upload_limit(app: Flask, path: str, endpoint: str | None) -> int:
    """A request's body limit: image-sized for the head-office console and API,
    4 MiB for the sync API, small for the web shop and anything else."""
    if path.startswith(("/hq/", "/api/v1/hq/")) or path == "/hq":
        return app.config["HQ_MAX_CONTENT_LENGTH"]
    if path.startswith("/api/"):
        return app.config["MAX_CONTENT_LENGTH"]
    return app.config["SHOP_MAX_CONTENT_LENGTH"]


class _NoCookieSessionOnApi(SecureCookieSessionInterface):
    """The signed store API and the head-office token API never use the cookie
    session: skip reading it there (a tenth of a signed request's cost with a thousand
    stores polling); elsewhere, Flask's signed cookie as before."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/api/"):
            return None  # Flask's null session: empty, refuses writes
        return super().open_session(app, request)


def _trust_proxies(app: Flask) -> None:
    """Read the client's address (and scheme) from the proxies' headers when told how
    many proxies there are; a wrong setting stops the start with the reason."""
    proxies = app.config["TRUSTED_PROXIES"]
    if isinstance(proxies, bool) or not isinstance(proxies, int) or not 0 <= proxies <= 5:
        raise RuntimeError(
            f"KIOSK_HUB_TRUSTED_PROXIES must be a whole number from 0 to 5, not {proxies!r}"
        )
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]


def create_hub_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the hub; settings come from ``test_config`` or ``KIOSK_HUB_*`` env vars."""
    app = new_app(__name__, DEFAULTS, "KIOSK_HUB", test_config)
    data_dir = app.config["DATA_DIR"]
    _trust_proxies(app)
    storage.init_app(app)  # DATABASE (a PostgreSQL URL) or DATA/hub.db; the request pool
    app.session_interface = _NoCookieSessionOnApi()
    # Migrate once, before serving, so requests never race to create tables; publish
    # the token-signing key so stores can verify pickup QR codes before any order.
    db = storage.open_database(app.config["HUB_DATABASE"])
    try:
        keys.ensure_hub_key(db, data_dir)
        # Orders' names and e-mails written in clear before m016 sealed (with the key
        # ring: a migration has none), the clear columns blanked: once, the first start
        # that finds nothing left in clear says so (hub_meta) and later starts skip it.
        order_people.seal_existing(db, pii.hub_ring(db, data_dir), once=True)
    finally:
        db.close()

    # Every HTML form posts with a CSRF token; the signed store API and the token-
    # authenticated head-office API are not cookie-authenticated, so their blueprints
    # are exempt (api.blueprint, hq_api.blueprint). Head-office requests may carry a
    # promotion image (10 MB at most, checked where it is read); the limit is checked
    # before CSRF, whose check reads the form and body.
    security.limit_bodies(app, _upload_limit)
    csrf.init_app(app)
    i18n.init_app(app)  # the web shop: French first, English (session["lang"])
    htmx.init_app(app)  # the console's fleet pages and login redirect read htmx headers
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    for context_processor in CONTEXT_PROCESSORS:
        app.context_processor(context_processor)
    for name, template_filter in TEMPLATE_FILTERS.items():
        app.add_template_filter(template_filter, name)
    # Feed pages and transaction results are per store and change constantly; a
    # response that says how it may be cached (a product picture) keeps its own rule.
    security.send_security_headers(app, default_cache_control="no-store")

    @app.get("/")
    def index() -> Response:
        """A plain page saying what this server is, with links to the console and the shop."""
        # Only a count: store ids are not advertised to whoever loads this page.
        n_stores = len(registry.list_stores(get_db()))
        html = (
            "<!doctype html><html lang='en'><meta charset='utf-8'>"
            "<title>Kiosk hub</title><h1>Kiosk hub</h1>"
            "<p>The central back-end that store servers sync with: signed requests under "
            "<code>/api/v1</code> (see <code>docs/protocol.md</code> and "
            "<code>docs/openapi.yaml</code>). Status: <a href='/api/v1/status'>"
            f"/api/v1/status</a>. {n_stores} stores registered.</p>"
            "<ul><li><a href='/hq/'>Console siège (head office)</a></li>"
            "<li><a href='/shop'>Boutique en ligne (web shop)</a></li></ul></html>"
        )
        return Response(html, mimetype="text/html")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        """Errors are JSON ``{error, message}``: stores and adapters parse them; a
        person in the web shop (a mistyped address under /shop) gets a page."""
        headers = security.exception_headers(exc)
        if request.path.startswith("/shop/") and exc.code in (404, 405):
            html = render_template("hub/shop/error.html", code=exc.code, csrf=False)
            return html, exc.code, headers
        code = (exc.name or "error").lower().replace(" ", "_")
        message = exc.description or ""
        if exc.code == 413:  # past this area's limit: say the limit
            code, message = "body_too_large", security.too_large_message()
        return jsonify(error=code, message=message), exc.code or 500, headers

    @app.errorhandler(storage.PoolTimeout)
    def pool_timeout(_exc: storage.PoolTimeout) -> Any:
        """Every database connection of this process is busy: the store retries later."""
        resp = jsonify(error="overloaded", message="the hub is busy; retry later")
        resp.headers["Retry-After"] = "5"
        return resp, 503

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> Any:
        """Log it; answer JSON with no internals, so a store retries later."""
        app.logger.exception("unhandled error")
        return jsonify(error="internal_error", message="the hub failed; retry later"), 500

    return app


__all__ = ["create_hub_app"]
