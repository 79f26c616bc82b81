"""Helpers for head-office console tests: users, logins and CSRF tokens over HTTP."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import requests

from app.hub.domain import hq_users

from .hub_fixtures import open_hub_db

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_user(data: Path, role: str, password: str = "correct-horse-42") -> dict[str, Any]:
    """A head-office user with a fresh e-mail, in a hub data directory; with its password."""
    db = open_hub_db(data)
    try:
        user = hq_users.add_user(
            db, f"{role}-{secrets.token_hex(4)}@siege.test", f"Test {role}", role, password
        )
    finally:
        db.close()
    return {**user, "password": password}


def make_token(data: Path, role: str) -> str:
    """An API token with ``role`` in a hub data directory."""
    db = open_hub_db(data)
    try:
        return hq_users.create_token(db, f"test {role}", role)
    finally:
        db.close()


def csrf_token(session: requests.Session, url: str) -> str:
    """The CSRF token of the form on the page at ``url``."""
    page = session.get(url, timeout=10)
    match = _CSRF.search(page.text)
    assert match, f"no CSRF token on {url} ({page.status_code})"
    return match.group(1)


def login(base: str, email: str, password: str) -> tuple[requests.Session, requests.Response]:
    """A session that posted the login form; and the answer (not followed)."""
    session = requests.Session()
    token = csrf_token(session, f"{base}/hq/login")
    answer = session.post(
        f"{base}/hq/login",
        data={"email": email, "password": password, "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    return session, answer


def logged_in(base: str, user: dict[str, Any]) -> requests.Session:
    """A session logged in as ``user`` (from :func:`make_user`)."""
    session, answer = login(base, user["email"], user["password"])
    assert answer.status_code == 302, answer.text[:500]
    return session
