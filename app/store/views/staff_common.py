"""What every staff screen (``/staff/...``) shares: the login check, who acted, the
staff error pages, the no-store rule, and a printed ticket as a response or as a page
to print it from.

Each staff area's module makes its blueprint with ``staff_blueprint``, so every staff
screen is guarded, cached and refused the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException

from app.core import clock
from app.store.domain import staff, tickets
from app.store.storage import get_db
from app.web.htmx import redirect_page, vary_on_htmx

# The staff pages that need no login: the login itself, the logout, and ``/staff``.
PUBLIC_ENDPOINTS = {"staff.login", "staff.logout", "staff.home"}


def device_name() -> str:
    """Which device acted, for the audit log: its address and browser."""
    agent = request.headers.get("User-Agent", "")[:80]
    return f"{request.remote_addr or '?'} {agent}".strip()


def current_staff() -> dict[str, Any] | None:
    """The logged-in staff member of this request, or None."""
    return g.get("staff")


def is_manager() -> bool:
    """Whether the logged-in staff member is a manager."""
    member = current_staff()
    return bool(member) and member["role"] == "manager"


def require_staff() -> Any:
    """Before-request hook: every staff page needs a live staff session; otherwise, to
    the login page."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    member = session.get("staff")
    seen = session.get("staff_seen", 0)
    idle = current_app.config["STAFF_IDLE_SECONDS"]
    if member and clock.now_s() - seen <= idle:
        db = get_db()
        fresh = staff.get_staff(db, member["id"])
        # The session must still be live on the server: a logout, a PIN or role change
        # or a lockout ended it, even for a copy of this cookie.
        if fresh is not None and staff.session_live(db, session.get("staff_sid"), fresh["id"]):
            g.staff = fresh
            # A screen refreshing itself (X-Staff-Poll) is not someone using the tablet:
            # it must not keep an unattended session open forever.
            if not request.headers.get("X-Staff-Poll"):
                session["staff_seen"] = clock.now_s()
            return None
    expired = bool(member)
    session.pop("staff", None)
    target = url_for(
        "staff.login",
        next=request.full_path if request.method == "GET" else None,
        expired=1 if expired else None,
    )
    return redirect_page(target)


def manager_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only a manager may do this (a staff member gets a 403 page)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not is_manager():
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def no_store(response: Response) -> Response:
    """After-request hook: a staff page (a customer's order, a code) is never cached."""
    response.headers["Cache-Control"] = "no-store"
    return response


def staff_error(exc: HTTPException) -> Any:
    """A 4xx on a staff page: said in the staff screens' look, with their navigation."""
    return render_template("staff/error.html", error=exc), exc.code or 400


def staff_blueprint(name: str, import_name: str, *, error_pages: bool = True) -> Blueprint:
    """A staff area's blueprint under ``/staff``: login required, never cached, htmx
    partials kept apart by caches, and (``error_pages``) its 403 and 404 said in the
    staff screens' look. Not 400: the CSRF refusal (a 400) keeps its own page."""
    bp = Blueprint(name, import_name, url_prefix="/staff")
    bp.before_request(require_staff)
    bp.after_request(vary_on_htmx)
    bp.after_request(no_store)
    if error_pages:
        for code in (403, 404):
            bp.register_error_handler(code, staff_error)
    return bp


def ticket_response(img: Any, fmt: str, name: str) -> Response:
    """A printed ticket (bag label, receipt, reservation ticket) as PNG or PDF; any other
    format is a 404."""
    if fmt == "png":
        body, mime = tickets.to_png(img), "image/png"
    elif fmt == "pdf":
        body, mime = tickets.to_pdf(img), "application/pdf"
    else:
        abort(404)
    resp = Response(body, mimetype=mime)
    resp.headers["Content-Disposition"] = f'inline; filename="{name}.{fmt}"'
    return resp


def ticket_print_page(
    endpoint: str,
    *,
    heading: str,
    back_url: str,
    back_label: str,
    alt: str | None = None,
    **values: Any,
) -> str:
    """A printed ticket's print view (templates/staff/print_ticket.html): the ticket's
    PNG (``endpoint`` with ``fmt``) at its print size, a Print button, a PDF link, a
    way back (``alt``, the picture's text, defaults to the heading). The PNG and PDF
    addresses stay as they are: other tools link them."""
    return render_template(
        "staff/print_ticket.html",
        heading=heading,
        alt=alt or heading,
        image_url=url_for(endpoint, fmt="png", **values),
        pdf_url=url_for(endpoint, fmt="pdf", **values),
        back_url=back_url,
        back_label=back_label,
    )
