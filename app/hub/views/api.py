"""The sync API for stores, ``/api/v1`` (docs/protocol.md, docs/openapi.yaml).

Every module of this API makes its blueprint with :func:`blueprint`."""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from app.core import jsonsafe, signing
from app.core.clock import now_iso
from app.hub import feed_wait, recent_changes
from app.hub.domain import carts, changes, fleet, nonces, ratelimit, registry
from app.hub.protocol import transactions
from app.hub.storage import get_db, release_db
from app.web.security import csrf

API_VERSION = "1"
MAX_WAIT_S = 30
POLL_INTERVAL_S = 0.15  # how often a process's feed waiter looks for a new seq
#: A held long-poll returns after 80-100 % of its ``wait`` (0: exactly ``wait``).
FEED_WAIT_JITTER = 0.2
JITTER_FROM_S = 5  # shorter waits are held exactly
#: Signed cart look-ups a store may make per minute: a kiosk looks a cart up when a
#: shopper shows a big cart's QR code (a few per hour); 30 a minute is far above that and
#: far below what guessing 98-bit cart ids would need.
CART_LOOKUPS_PER_MINUTE = 30


def blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint of the store API, under ``/api/v1``: requests are signed by a store
    (:func:`signed`), not cookie-authenticated, so exempt from CSRF."""
    api = Blueprint(name, import_name, url_prefix="/api/v1")
    csrf.exempt(api)
    return api


bp = blueprint("hub_api", __name__)


def error(status: int, code: str, message: str) -> ResponseReturnValue:
    """The protocol's error body ``{error, message}`` with ``status``."""
    return jsonify(error=code, message=message), status


def _path_qs() -> str:
    """The path and query exactly as sent on the request line (what the store signed)."""
    raw = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI")
    if raw:
        if not raw.startswith("/"):  # absolute-form request target (via a proxy)
            parts = urlsplit(raw)
            raw = parts.path + (f"?{parts.query}" if parts.query else "")
        return raw
    qs = request.query_string.decode("latin-1")
    return request.path + (f"?{qs}" if qs else "")


def signed(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Only let through a request signed by a known store, with a fresh nonce."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        db = get_db()
        body = request.get_data(cache=True)
        try:
            store_id, nonce, _ts = signing.verify_request(
                request.headers,
                request.method,
                _path_qs(),
                body,
                lambda sid: registry.secret_for(db, sid),
            )
        except signing.AuthError as exc:
            return error(401, exc.code, exc.message)
        # Only after the signature is good, so strangers cannot fill the nonce table.
        if not nonces.remember_nonce(db, store_id, nonce):
            return error(401, "replayed", "this nonce was already used")
        g.store_id = store_id
        # Heard from (for the fleet dashboard): a long-poll counts when it starts, and
        # an idle store starts one every 25 s at most.
        fleet.touch(db, store_id)
        return view(*args, **kwargs)

    return wrapper


@bp.post("/transactions")
@signed
def post_transactions() -> ResponseReturnValue:
    """Apply a batch of the store's transactions; one result per transaction, in order."""
    try:
        # Bounded depth, no NaN/Infinity; an odd number is left for its item to refuse.
        body = jsonsafe.loads(request.get_data(cache=True), keep_bad_numbers=True)
    except ValueError as exc:
        return error(400, "bad_request", f"the body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return error(400, "bad_request", 'the body must be a JSON object {"transactions": [...]}')
    items = body.get("transactions")
    if not isinstance(items, list):
        return error(400, "bad_request", 'expected {"transactions": [...]}: a list of objects')
    if len(items) > transactions.MAX_BATCH:
        return error(
            413,
            "batch_too_large",
            f"at most {transactions.MAX_BATCH} transactions per request, got {len(items)}",
        )
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return error(
                400, "bad_request", f"transactions[{index}] must be a JSON object: nothing applied"
            )
    results = transactions.apply_batch(
        get_db(), g.store_id, items, data_dir=current_app.config["DATA_DIR"]
    )
    return jsonify(results=results)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    """A query parameter's integer value (``default`` when absent), else ValueError naming
    it: an empty, signed, non-decimal or out-of-range value is refused, never guessed."""
    text = request.args.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or not low <= int(text) <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {text[:40]!r}")
    return int(text)


def _overloaded(wait: int) -> ResponseReturnValue:
    """503 with Retry-After: more long-polls are held than this process serves; the store
    backs off for about its wait (spread, so they do not all come back at once)."""
    resp = jsonify(error="overloaded", message="the hub holds too many long-polls; retry later")
    resp.headers["Retry-After"] = str(max(1, int(wait * (0.5 + random.random()))))
    return resp, 503


@bp.get("/changes")
@signed
def get_changes() -> ResponseReturnValue:
    """A page of the change feed after ``since``; long-polls up to ``wait`` s when empty."""
    try:
        since = _int_arg("since", 0, 0, 2**63 - 1)
        wait = _int_arg("wait", 0, 0, MAX_WAIT_S)
        limit = _int_arg("limit", changes.DEFAULT_LIMIT, 1, changes.MAX_LIMIT)
    except ValueError as exc:
        return error(400, "bad_request", str(exc))
    config = current_app.config
    # The newest changes are served from this process's memory (app/hub/recent_changes.py).
    recent = recent_changes.recent_for(config["HUB_DATABASE"])
    page = recent.page(get_db(), g.store_id, since, limit)
    if page["items"] or not wait:
        return _page_response(page)
    waiter = feed_wait.waiter_for(
        config["HUB_DATABASE"],
        config.get("POLL_INTERVAL_S", POLL_INTERVAL_S),
        config.get("FEED_MAX_WAITERS"),
    )
    # Spread the long holds (by default 80 to 100 % of ``wait``, never longer than asked)
    # so that stores started together do not all come back in the same second; a short
    # wait (under 5 s: a test, a person checking) is held exactly.
    hold = float(wait)
    if wait >= JITTER_FROM_S:
        hold *= 1 - float(config.get("FEED_WAIT_JITTER", FEED_WAIT_JITTER)) * random.random()
    deadline = time.monotonic() + hold
    # Nothing is held while waiting, not even a database connection: one waiter per
    # process learns of new changes (also those committed by other hub processes) and
    # wakes the held requests.
    release_db()
    while not page["items"]:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            woken = waiter.wait_past(int(page["cursor"]), left)
        except feed_wait.Overloaded:
            return _overloaded(wait)
        if woken:
            page = recent.page(get_db(), g.store_id, int(page["cursor"]), limit)
            release_db()
    return _page_response(page)


def _page_response(page: dict[str, Any]) -> Response:
    """A feed page as JSON: the changes' JSON items as held, then the page's fields
    (keys sorted, as Flask writes its JSON)."""
    rest = {k: v for k, v in page.items() if k != "items"}
    rest["server_time"] = now_iso()
    tail = json.dumps(rest, sort_keys=True, separators=(",", ":"))
    return Response(
        f'{{"changes":[{",".join(page["items"])}],{tail[1:]}', mimetype="application/json"
    )


@bp.get("/carts/<cart_id>")
@signed
def get_cart(cart_id: str) -> ResponseReturnValue:
    """An open online cart's lines, for a store reading a cart QR that names only its id."""
    db = get_db()
    limit = int(current_app.config.get("CART_LOOKUPS_PER_MINUTE", CART_LOOKUPS_PER_MINUTE))
    # Counted before the look-up, found or not: the limit is what stops id probing.
    allowed, retry_after = ratelimit.hit(db, f"cart_lookup:{g.store_id}", limit)
    if not allowed:
        resp = jsonify(error="rate_limited", message=f"at most {limit} cart look-ups a minute")
        resp.headers["Retry-After"] = str(retry_after)
        return resp, 429
    cart = carts.get_cart(db, cart_id)
    if cart is None:
        return error(404, "unknown_cart", "no such cart")
    if cart["status"] != "open":
        return error(410, "cart_revoked", f"this cart was {cart['status']}: it cannot be used")
    return jsonify(cart=carts.lookup_data(db, cart))


@bp.post("/health")
@signed
def post_health() -> ResponseReturnValue:
    """Record the store's health report; answer the clock skew and sync lag computed."""
    try:
        body = jsonsafe.loads(request.get_data(cache=True), keep_bad_numbers=True)
    except ValueError as exc:
        return error(400, "bad_request", f"the body is not valid JSON: {exc}")
    try:
        computed = fleet.record_health(get_db(), g.store_id, body)
    except fleet.HealthError as exc:
        return error(400, "bad_request", str(exc))
    return jsonify(computed)


@bp.get("/status")
def status() -> ResponseReturnValue:
    """Unsigned liveness and version, for monitoring and for a store's first contact."""
    db = get_db()
    n_stores = db.execute("SELECT count(*) FROM stores").fetchone()[0]
    return jsonify(
        ok=True,
        version=API_VERSION,
        time=now_iso(),
        stores=n_stores,
        last_seq=changes.last_seq(db),
    )
