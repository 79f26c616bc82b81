"""The head-office console (``/hq``): login, logout, users, the audit log, and what
every console page shares: :func:`blueprint` (the console's error pages on each of its
blueprints), :func:`console_context` (the templates' globals), and the helpers every
console view uses (``login_required``, ``current_user``, ``audit``).

Head office works in French, and the hub has no translation catalogue: the console's
text is written in French in its templates, like the hub's shop pages.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from babel.dates import get_timezone_location
from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_htmx import make_response as htmx_response
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import RequestEntityTooLarge

from app.core import clock
from app.hub.domain import console_lists, hq_audit, hq_users, promo_images
from app.hub.domain.listing import page_number
from app.hub.storage import get_db
from app.web.htmx import htmx
from app.web.security import safe_next

ROLE_LABELS = {
    "marketing": "Marketing",
    "operations": "Exploitation",
    "admin": "Administration",
}
# How the journal names the actions (the code is shown too; others show the code only).
ACTION_LABELS = {
    "login": "Connexion",
    "logout": "Déconnexion",
    "login.failed": "Connexion refusée (e-mail inconnu)",
    "login.wrong_password": "Mot de passe erroné",
    "login.locked": "Compte bloqué (trop d'essais)",
    "login.refused_locked": "Connexion refusée (compte bloqué)",
    "login.refused_disabled": "Connexion refusée (compte désactivé)",
    "user.added": "Utilisateur ajouté",
    "user.disabled": "Utilisateur désactivé",
    "user.enabled": "Utilisateur réactivé",
    "user.password_changed": "Mot de passe changé (sessions fermées)",
    "user.role_changed": "Rôle changé (sessions fermées)",
    "token.created": "Jeton d'API créé",
    "token.revoked": "Jeton d'API révoqué",
    "outbox.retry": "Nouvel essai d'une transaction bloquée",
    "outbox.discard": "Abandon d'une transaction bloquée",
    "promotion.created": "Promotion créée",
    "promotion.updated": "Promotion modifiée",
    "promotion.published": "Promotion publiée",
    "promotion.unpublished": "Promotion dépubliée",
    "loyalty.rules_changed": "Règle de fidélité modifiée",
    "offer.created": "Offre ciblée créée",
    "offer.ended": "Offre ciblée retirée",
}
# A console session ends after this long even if the browser keeps its cookie.
SESSION_MAX_S = 12 * 3600


def client_ip() -> str:
    """The caller's address as waitress saw it (proxy headers are not trusted)."""
    return request.remote_addr or ""


def current_user() -> dict[str, Any] | None:
    """The logged-in head-office user (read from the database once per request), or None.

    A disabled user, a session older than SESSION_MAX_S, or one ended on the server
    (hq_users.revoke_session/revoke_sessions), counts as logged out.
    """
    if "hq_user_cached" in g:
        return g.hq_user_cached
    user = None
    user_id = session.get("hq_user")
    started = session.get("hq_login_at")
    if user_id and isinstance(started, (int, float)):
        fresh = clock.utcnow().timestamp() - started < SESSION_MAX_S
        db = get_db()
        found = hq_users.get_user(db, user_id) if fresh else None
        # Live on the server too: a logout, a password or role change or a lockout ended
        # it, even for a copy of this cookie.
        if found and not found["disabled"]:
            if hq_users.session_live(db, session.get("hq_sid"), user_id):
                user = found
    g.hq_user_cached = user
    return user


def has_role(user: dict[str, Any] | None, roles: tuple[str, ...]) -> bool:
    """Whether ``user`` may act under one of ``roles`` (none: any user; admin: always)."""
    if user is None:
        return False
    return not roles or user["role"] == "admin" or user["role"] in roles


def login_required(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Views for logged-in users with one of ``roles`` (none: any role; admin always).

    Not logged in: a redirect to the login page (an htmx request is told to load it as
    a whole page). Logged in with another role: the 403 page.
    """
    hq_users.check_roles(roles)

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            user = current_user()
            if user is None:
                target = url_for("hq.login", next=request.full_path.rstrip("?"))
                if htmx:
                    return htmx_response("", 401, redirect=target)
                return redirect(target)
            if not has_role(user, roles):
                return forbidden()
            return view(*args, **kwargs)

        return wrapper

    return decorator


def forbidden() -> ResponseReturnValue:
    """The console's 403 page."""
    return render_template("hq/forbidden.html"), 403


def audit(action: str, detail: dict[str, Any]) -> None:
    """Record ``action`` by the logged-in user or the API token of this request, with IP."""
    actor = current_user() or g.get("hq_token")
    hq_audit.record_audit(get_db(), actor, action, detail, client_ip())


def zone_label(zone: str) -> str:
    """A time zone as people say it: ``Europe/Paris`` -> ``heure locale (Paris)``."""
    try:
        city = get_timezone_location(zone, locale="fr", return_city=True)
    except (LookupError, ValueError):
        return zone
    return f"heure locale ({city})"


def console_context() -> dict[str, Any]:
    """What the console's templates use on every page (an app context processor)."""
    return {
        "role_labels": ROLE_LABELS,
        "action_labels": ACTION_LABELS,
        "hq_user": current_user,
        "hq_has_role": has_role,
        "hq_endpoints": current_app.view_functions,
        "zone_label": zone_label,
    }


def _csrf_failed(error: CSRFError) -> ResponseReturnValue:
    """A console form sent without a valid CSRF token (often a page left open too long)."""
    return render_template("hq/csrf.html"), 400


def _too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
    """A body past the upload limit (a 50 MB photo): say so in words, not a bare 413."""
    return render_template("hq/too_large.html", max_mb=promo_images.MAX_MEGABYTES), 413


def blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint of the console, under ``/hq``, with the console's own error pages (a
    form without its CSRF token, a body past the upload limit): every console module
    makes its blueprint here, so every /hq page answers alike."""
    console = Blueprint(name, import_name, url_prefix="/hq")
    console.register_error_handler(CSRFError, _csrf_failed)
    console.register_error_handler(RequestEntityTooLarge, _too_large)
    return console


bp = blueprint("hq", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The login form; on success a fresh session for the user."""
    error = None
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "")[:254]
        user = hq_users.authenticate(
            get_db(), email, request.form.get("password", ""), ip=client_ip()
        )
        if user is not None:
            # Only a path inside the console: never another site.
            next_url = safe_next(request.form.get("next"), url_for("hq.home"), prefix="/hq")
            # A new session on login: nothing from before it (a planted id) carries over.
            session.clear()
            session["hq_user"] = user["id"]
            session["hq_login_at"] = int(clock.utcnow().timestamp())
            session["hq_sid"] = hq_users.open_session(get_db(), user["id"])
            return redirect(next_url)
        # One message for every refusal: it must not tell which e-mails exist.
        error = (
            "E-mail ou mot de passe incorrect. Après plusieurs essais, le compte est "
            "bloqué quelques minutes : patientez avant de réessayer."
        )
    html = render_template(
        "hq/login.html", error=error, email=email, next=safe_next(request.values.get("next"), "")
    )
    return html, (401 if error else 200)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the console session."""
    user = current_user()
    if user:
        hq_users.revoke_session(get_db(), session.get("hq_sid"))  # a copied cookie ends too
        hq_audit.record_audit(get_db(), user, "logout", {}, client_ip())
    session.clear()
    return redirect(url_for("hq.login"))


@bp.get("/")
@login_required()
def home() -> ResponseReturnValue:
    """The console's start page: the fleet for operations, promotions for marketing."""
    user = current_user()
    assert user is not None
    if user["role"] == "marketing" and "hq_promotions.promotions" in current_app.view_functions:
        return redirect(url_for("hq_promotions.promotions"))
    if user["role"] == "marketing":
        return render_template("hq/home.html")
    return redirect(url_for("hq_fleet.fleet"))


@bp.get("/journal")
@login_required()
def audit_log() -> ResponseReturnValue:
    """The audit log, newest first, 50 entries a page (``?page=``), filtered by who
    (``?par=`` a user or token id, ``-`` for none) and by action (``?action=``): admins
    see every entry, others only their own. ``?avant=<id>`` (older links) still works."""
    user = current_user()
    assert user is not None
    admin = user["role"] == "admin"
    db = get_db()
    actor = (request.args.get("par") or "")[:40] or None
    if not admin:
        actor = user["id"]  # the filter is theirs, whatever the address says
    action = (request.args.get("action") or "")[:80] or None
    before = request.args.get("avant", type=int)
    if before is not None and not 0 < before < 2**62:  # SQLite integers are 64-bit
        before = None
    page = console_lists.audit_page(
        db, page_number(request.args.get("page")), actor=actor, action=action, before_id=before
    )
    filters = {"par": actor if admin else None, "action": action, "avant": before}
    return render_template(
        "hq/audit.html",
        entries=page.items,
        page=page,
        filters={k: v for k, v in filters.items() if v is not None},
        admin=admin,
        actor=actor,
        action=action,
        actions=console_lists.audit_actions(db),
        people=hq_users.list_users(db) if admin else [],
        tokens=hq_users.list_tokens(db) if admin else [],
        no_actor=console_lists.NO_ACTOR,
    )


@bp.get("/utilisateurs")
@login_required("admin")
def users() -> ResponseReturnValue:
    """Head-office users and API tokens (admin)."""
    db = get_db()
    return render_template(
        "hq/users.html",
        users=hq_users.list_users(db),
        tokens=hq_users.list_tokens(db),
        roles=hq_users.ROLES,
        form=request.form,
        error=None,
        new_token=None,
    )


@bp.post("/utilisateurs")
@login_required("admin")
def add_user() -> ResponseReturnValue:
    """Add a head-office user (admin)."""
    db = get_db()
    form = request.form
    try:
        user = hq_users.add_user(
            db,
            form.get("email", ""),
            form.get("name", ""),
            form.get("role", ""),
            form.get("password", ""),
        )
    except hq_users.HqError as exc:
        messages = {
            "email": "Adresse e-mail invalide.",
            "name": "Indiquez un nom (80 caractères au plus).",
            "role": "Choisissez un rôle.",
            "password": f"Le mot de passe doit faire au moins {hq_users.PASSWORD_MIN} caractères.",
            "exists": "Un utilisateur a déjà cette adresse e-mail.",
        }
        return (
            render_template(
                "hq/users.html",
                users=hq_users.list_users(db),
                tokens=hq_users.list_tokens(db),
                roles=hq_users.ROLES,
                form=form,
                error=messages.get(exc.code, str(exc)),
                new_token=None,
            ),
            422,
        )
    audit("user.added", {"user_id": user["id"], "email": user["email"], "role": user["role"]})
    flash(f"Utilisateur {user['email']} ajouté.")
    return redirect(url_for("hq.users"))


@bp.post("/utilisateurs/<user_id>/desactiver")
@login_required("admin")
def disable_user(user_id: str) -> ResponseReturnValue:
    """Disable a user (admin); not oneself, so the last admin cannot lock everyone out."""
    user = current_user()
    assert user is not None
    if user_id == user["id"]:
        flash("Vous ne pouvez pas désactiver votre propre compte.")
    elif hq_users.set_disabled(get_db(), user_id, True):
        audit("user.disabled", {"user_id": user_id})
        flash("Utilisateur désactivé.")
    return redirect(url_for("hq.users"))


@bp.post("/utilisateurs/<user_id>/activer")
@login_required("admin")
def enable_user(user_id: str) -> ResponseReturnValue:
    """Enable a disabled user again (admin)."""
    if hq_users.set_disabled(get_db(), user_id, False):
        audit("user.enabled", {"user_id": user_id})
        flash("Utilisateur réactivé.")
    return redirect(url_for("hq.users"))


@bp.post("/jetons")
@login_required("admin")
def add_token() -> ResponseReturnValue:
    """Create an API token (admin); it is shown this once."""
    db = get_db()
    form = request.form
    try:
        token = hq_users.create_token(db, form.get("name", ""), form.get("role", ""))
    except hq_users.HqError:
        flash("Indiquez un nom et un rôle pour le jeton.")
        return redirect(url_for("hq.users"))
    audit("token.created", {"name": form.get("name", "")[:80], "role": form.get("role")})
    return render_template(
        "hq/users.html",
        users=hq_users.list_users(db),
        tokens=hq_users.list_tokens(db),
        roles=hq_users.ROLES,
        form={},
        error=None,
        new_token=token,
    )


@bp.post("/jetons/<token_id>/revoquer")
@login_required("admin")
def revoke_token(token_id: str) -> ResponseReturnValue:
    """Revoke an API token (admin)."""
    if hq_users.revoke_token(get_db(), token_id):
        audit("token.revoked", {"token_id": token_id})
        flash("Jeton révoqué.")
    return redirect(url_for("hq.users"))
