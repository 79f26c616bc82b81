"""Security headers and CSRF protection for every response and form."""

from __future__ import annotations

from flask import Flask, Response, render_template
from flask_wtf.csrf import CSRFError, CSRFProtect

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


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
    return response


def _csrf_failed(error: CSRFError) -> tuple[str, int]:
    # Most often a page left open across a restart or a logout: say what to do.
    return render_template("kiosk/error.html", error=error, csrf_failed=True), 400


def init_app(app: Flask) -> None:
    """Turn on CSRF checks and the security headers."""
    csrf.init_app(app)
    app.after_request(_headers)
    app.register_error_handler(CSRFError, _csrf_failed)
