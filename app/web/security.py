"""Security headers and CSRF protection for every response and form, the one rule for
``next`` redirects, and request body limits (shared by the store and the hub)."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, RequestURITooLarge

# No inline script, no eval, nothing from elsewhere: the kiosk may be offline and a
# shop floor is a hostile place.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

csrf = CSRFProtect()


# The store's kiosks and counters scan with the camera; nothing asks for more.
STORE_PERMISSIONS = "camera=(self), microphone=(), geolocation=()"


def security_headers(
    response: Response,
    *,
    permissions_policy: str | None = None,
    default_cache_control: str | None = None,
) -> Response:
    """The headers every response of either app carries (CSP, no sniffing, no framing,
    same-origin referrers), plus what differs by app: a ``Permissions-Policy``, and the
    ``Cache-Control`` a response gets when it does not say how it may be cached."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if permissions_policy is not None:
        response.headers["Permissions-Policy"] = permissions_policy
    if default_cache_control is not None:
        response.headers.setdefault("Cache-Control", default_cache_control)
    return response


def send_security_headers(
    app: Flask,
    *,
    permissions_policy: str | None = None,
    default_cache_control: str | None = None,
) -> None:
    """Give every response of ``app`` :func:`security_headers` (an after-request hook)."""
    app.after_request(
        functools.partial(
            security_headers,
            permissions_policy=permissions_policy,
            default_cache_control=default_cache_control,
        )
    )


def _csrf_failed(error: CSRFError) -> tuple[str, int]:
    # Most often a page left open across a restart or a logout: say what to do.
    return render_template("kiosk/error.html", error=error, csrf_failed=True), 400


def init_app(app: Flask) -> None:
    """The store: turn on CSRF checks and the security headers (camera allowed)."""
    csrf.init_app(app)
    send_security_headers(app, permissions_policy=STORE_PERMISSIONS)
    app.register_error_handler(CSRFError, _csrf_failed)


def exception_headers(exc: HTTPException) -> list[tuple[str, str]]:
    """What an HTTP error says in headers (a 405's ``Allow``, a ``Retry-After``), for an
    error page or JSON of our own: all but werkzeug's own content type."""
    return [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]


# --- Where to go after a form (``next``) ---------------------------------------------

NEXT_MAX = 2048  # far more than any page of ours; a longer value is not one of our links


def safe_next(target: object, default: str, *, prefix: str = "/", host: str | None = None) -> str:
    """``target`` if it is a path on this site under ``prefix``, else ``default``.

    The one rule for every ``next`` (and kiosk referrer) in the project: only a plain
    local path, printable ASCII with no spaces, backslashes or control characters (no
    CR/LF header splitting), not scheme-relative (``//evil``), no scheme (``javascript:``),
    no other host, of a sane length. An absolute URL on ``host`` (a browser's referrer)
    is reduced to its path. Anything odd falls back to ``default``; nothing here raises.
    """
    if not isinstance(target, str) or not target or len(target) > NEXT_MAX:
        return default
    if not all("!" <= c <= "~" for c in target) or "\\" in target:
        return default
    try:
        parts = urlsplit(target)
    except ValueError:  # "http://[evil": an unbalanced IPv6 bracket
        return default
    if parts.scheme or parts.netloc:
        if not (host and parts.scheme in ("http", "https") and parts.netloc == host):
            return default
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        parts = urlsplit(target)
    path = parts.path
    # The raw text, not the parsed path: "///evil" parses as the path "/evil", but a
    # browser reads it as scheme-relative, like "//evil".
    if not target.startswith("/") or target.startswith("//") or parts.fragment:
        return default
    if prefix != "/" and path != prefix and not path.startswith(prefix.rstrip("/") + "/"):
        return default
    return target


# --- Request body limits -------------------------------------------------------------

KiB = 1024
MiB = 1024 * KiB
# Set by the waitress error task below: the body was past the server's cap and was not
# read; the app answers from the headers alone.
TOO_LARGE_ENV = "kiosk.body_too_large"
#: The longest request line a server reads (store and hub): a longer one is a 414.
MAX_REQUEST_LINE = 64 * KiB
# Set by a server that read a request line past MAX_REQUEST_LINE: the app answers 414.
URI_TOO_LONG_ENV = "kiosk.uri_too_long"


def format_size(n: int, mib: str = "MiB", kib: str = "KiB") -> str:
    """``4 MiB``, ``256 KiB`` (French callers pass ``Mio``/``Kio``), rounded down: a
    photo limit with room for its form (8 MiB + 64 KiB) reads "8 MiB"."""
    if n >= MiB:
        return f"{n // MiB} {mib}"
    return f"{max(n // KiB, 1)} {kib}"


def body_limit() -> int | None:
    """The largest body this request may carry (set by :func:`limit_bodies`)."""
    return request.max_content_length


def too_large_message(limit: int | None = None) -> str:
    """The API's words for a 413: it names the limit."""
    limit = body_limit() if limit is None else limit
    return f"the request body is larger than {format_size(limit or 0)}, the most accepted here"


def largest_limit(app: Flask) -> int:
    """The largest of the app's ``*MAX_CONTENT_LENGTH`` settings: waitress's backstop."""
    return max(int(v) for k, v in app.config.items() if k.endswith("MAX_CONTENT_LENGTH") and v)


# The body limit of a request, from the app, its path and its endpoint (None: no route).
LimitFor = Callable[[Flask, str, "str | None"], int]


def limit_bodies(app: Flask, limit_for: LimitFor) -> None:
    """Give each request the body limit of its area and refuse it from its headers.

    Runs before every other request hook (CSRF reads the form, so the body): a
    Content-Length past the limit is a 413 before anything is read. A chunked body has
    no length: waitress de-chunks it (stopping at the limit, see :func:`serve`) and
    sets one; under other servers werkzeug stops reading at the limit (also a 413).
    """
    app.extensions["body_limit"] = limit_for

    def check() -> None:
        limit = limit_for(app, request.path, request.endpoint)
        request.max_content_length = limit
        length = request.content_length
        if request.environ.get(URI_TOO_LONG_ENV):
            raise RequestURITooLarge(f"The address is longer than {MAX_REQUEST_LINE} bytes.")
        if request.environ.get(TOO_LARGE_ENV) or (length is not None and length > limit):
            raise RequestEntityTooLarge(too_large_message(limit))

    app.before_request_funcs.setdefault(None, []).insert(0, check)


def _route_limit(app: Flask, path: str, method: str) -> int:
    """The body limit :func:`limit_bodies` will give a request, from its first line."""
    limit_for: LimitFor | None = app.extensions.get("body_limit")
    if limit_for is None:
        return largest_limit(app)
    try:
        path = path.encode("latin-1").decode("utf-8", "replace")  # WSGI's path, as Flask's
        endpoint, _args = app.url_map.bind("localhost").match(path, method=method)
    except Exception:  # noqa: BLE001 - not found, wrong method, a redirect: no endpoint
        endpoint = None
    try:
        return limit_for(app, path, endpoint)
    except Exception:  # noqa: BLE001 - never fail a request here: the app checks again
        return largest_limit(app)


def dechunk_body(app: Flask, environ: dict[str, Any]) -> None:
    """Read a chunked body up to its area's limit, as waitress does (for the store's
    gunicorn and the hub's gevent server): within it, the app sees it with a
    Content-Length; past it, nothing more is read and the app answers its 413
    (:data:`TOO_LARGE_ENV`) from the headers."""
    limit = _route_limit(app, environ.get("PATH_INFO") or "/", environ["REQUEST_METHOD"])
    stream = environ["wsgi.input"]
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        part = stream.read(min(65536, limit + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        environ[TOO_LARGE_ENV] = True
        environ["wsgi.input"] = io.BytesIO()
        environ["CONTENT_LENGTH"] = "0"
    else:
        environ["wsgi.input"] = io.BytesIO(b"".join(parts))
        environ["CONTENT_LENGTH"] = str(size)


def serve(app: Flask, **options: Any) -> None:
    """``waitress.serve``, refusing a body past its area's limit before reading it.

    waitress reads a whole body before calling the app (into memory, then a temporary
    file), and past its cap answers a plain-text 413 of its own. Here the cap is set per
    request, as soon as its headers are in, to the limit the app gives that path
    (:func:`limit_bodies`): a Content-Length past it is refused without reading the
    body, a chunked body as soon as it passes it; and the app itself answers the 413
    (its page or JSON naming the limit), from the headers alone. The app's largest
    limit is the server-wide backstop.
    """
    import copy
    import logging

    from waitress.channel import HTTPChannel
    from waitress.parser import HTTPRequestParser
    from waitress.server import BaseWSGIServer, create_server
    from waitress.task import ErrorTask, WSGITask
    from waitress.utilities import RequestEntityTooLarge as WaitressTooLarge

    class AreaParser(HTTPRequestParser):
        def parse_header(self, header_plus: bytes) -> None:
            super().parse_header(header_plus)
            # waitress compares the body with adj.max_request_body_size right after
            # this, and again as chunks come: this request's own copy holds its limit.
            limit = _route_limit(app, self.path or "/", self.command or "GET")
            self.adj = copy.copy(self.adj)
            # waitress refuses a length >= its setting: one more lets exactly limit in.
            self.adj.max_request_body_size = limit + 1

    class TooLargeTask(WSGITask):
        def get_environment(self) -> dict[str, Any]:
            environ = super().get_environment()
            environ["wsgi.input"] = io.BytesIO()  # what came of the body stays unread
            environ[TOO_LARGE_ENV] = True
            return environ

        def execute(self) -> None:
            self.set_close_on_finish()  # the rest of the body is still on the wire
            super().execute()

    def error_task(channel: HTTPChannel, req: Any) -> Any:
        if isinstance(req.error, WaitressTooLarge):
            return TooLargeTask(channel, req)
        return ErrorTask(channel, req)

    class Channel(HTTPChannel):
        parser_class = AreaParser
        error_task_class = staticmethod(error_task)

    logging.basicConfig()
    sockets: dict[Any, Any] = {}
    backstop = largest_limit(app) + 1
    server = create_server(app, map=sockets, max_request_body_size=backstop, **options)
    for listener in list(sockets.values()):
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = Channel
    server.print_listen("Serving on http://{}:{}")
    server.run()
