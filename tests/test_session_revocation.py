"""Sessions end on the server: a copied cookie stops working after a logout, a PIN or
password change, a lockout or a role change (store staff and head office), and the
hub's cookies are SameSite=Lax.

Each test logs in over HTTP against a real server, copies the session cookie into a
second client (an attacker who lifted it, or a tablet left logged in), checks the copy
works, does the action, and checks the copy now gets the login page.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from app.core import db as dbmod
from app.hub.domain import hq_users
from app.store.domain import staff

from .conftest import Server, staff_login
from .hq_helpers import csrf_token, logged_in, login, make_user
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import HubServer, open_hub_db

pytestmark = pytest.mark.clock  # lockouts, session ages

STAFF_PAGE = "/staff/status"
HQ_PAGE = "/hq/journal"


def copy_of(session: requests.Session) -> requests.Session:
    """A second client holding the same cookies."""
    other = requests.Session()
    other.cookies.update(session.cookies)
    return other


def assert_logged_in(client: requests.Session, url: str) -> None:
    answer = client.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 200, (answer.status_code, answer.headers.get("Location"))


def assert_sent_to_login(client: requests.Session, url: str, login_path: str) -> None:
    answer = client.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 401), answer.status_code
    if answer.status_code == 302:
        assert answer.headers["Location"].split("?")[0].endswith(login_path), answer.headers


# --- Store staff -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(seeded_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("revoke") / "store"
    shutil.copytree(seeded_template, data)
    server = Server(data).start()
    yield server
    server.stop()


@contextlib.contextmanager
def store_db(store: Server) -> Iterator:
    db = dbmod.connect(dbmod.db_path(store.data))
    try:
        yield db
    finally:
        db.close()


def _staff(store: Server, role: str = "staff") -> tuple[requests.Session, requests.Session, dict]:
    """A logged-in staff client, a copy of its cookie, and the member."""
    client = requests.Session()
    member = staff_login(client, store.data, store.url, role=role)
    copy = copy_of(client)
    assert_logged_in(copy, store.url + STAFF_PAGE)  # the copy works before the action
    return client, copy, member


def _staff_logout(store: Server, client: requests.Session, member: dict) -> None:
    token = csrf_token(client, store.url + STAFF_PAGE)
    answer = client.post(store.url + "/staff/logout", data={"csrf_token": token}, timeout=10)
    assert answer.ok


def _staff_pin_change(store: Server, client: requests.Session, member: dict) -> None:
    with store_db(store) as db:
        staff.change_pin(db, member["id"], "975310")


def _staff_role_change(store: Server, client: requests.Session, member: dict) -> None:
    with store_db(store) as db:
        staff.set_role(db, member["id"], "manager")


def _staff_lockout(store: Server, client: requests.Session, member: dict) -> None:
    guesser = requests.Session()
    for _ in range(staff.MAX_ATTEMPTS):
        token = csrf_token(guesser, store.url + "/staff/login")
        answer = guesser.post(
            store.url + "/staff/login",
            data={"staff_id": member["id"], "pin": "000000", "csrf_token": token},
            timeout=10,
        )
    assert answer.status_code == 429, answer.status_code  # locked now


STAFF_ACTIONS: dict[str, Callable[[Server, requests.Session, dict], None]] = {
    "logout": _staff_logout,
    "pin_change": _staff_pin_change,
    "role_change": _staff_role_change,
    "lockout": _staff_lockout,
}


@pytest.mark.parametrize("action", STAFF_ACTIONS)
def test_a_copied_staff_cookie_stops_working(store: Server, action: str) -> None:
    client, copy, member = _staff(store)
    STAFF_ACTIONS[action](store, client, member)
    assert_sent_to_login(copy, store.url + STAFF_PAGE, "/staff/login")
    assert_sent_to_login(client, store.url + STAFF_PAGE, "/staff/login")


def test_a_staff_logout_ends_only_that_session(store: Server) -> None:
    """The same member on another tablet stays logged in after this one logs out."""
    client, copy, member = _staff(store)
    other = requests.Session()
    token = csrf_token(other, store.url + "/staff/login")
    other.post(
        store.url + "/staff/login",
        data={"staff_id": member["id"], "pin": member["pin"], "csrf_token": token},
        timeout=10,
    )
    _staff_logout(store, client, member)
    assert_sent_to_login(copy, store.url + STAFF_PAGE, "/staff/login")
    assert_logged_in(other, store.url + STAFF_PAGE)


def test_staff_log_in_again_after_a_pin_change(store: Server) -> None:
    client, copy, member = _staff(store)
    _staff_pin_change(store, client, member)
    fresh = requests.Session()
    token = csrf_token(fresh, store.url + "/staff/login")
    fresh.post(
        store.url + "/staff/login",
        data={"staff_id": member["id"], "pin": "975310", "csrf_token": token},
        timeout=10,
    )
    assert_logged_in(fresh, store.url + STAFF_PAGE)


def test_change_pin_and_role_refuse_bad_values(store: Server) -> None:
    _client, copy, member = _staff(store)
    with store_db(store) as db:
        with pytest.raises(staff.StaffError):
            staff.change_pin(db, member["id"], "12345")
        with pytest.raises(staff.StaffError):
            staff.set_role(db, member["id"], "owner")
        with pytest.raises(staff.StaffError):
            staff.change_pin(db, "sf-nobody", "123456")
    assert_logged_in(copy, store.url + STAFF_PAGE)  # nothing changed, nothing ended


# --- Head office -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub(module_hub: HubServer) -> HubServer:  # noqa: F811
    return module_hub


def _hq(hub: HubServer) -> tuple[requests.Session, requests.Session, dict]:
    user = make_user(hub.data, "operations")
    client = logged_in(hub.url, user)
    copy = copy_of(client)
    assert_logged_in(copy, hub.url + HQ_PAGE)
    return client, copy, user


def _hq_logout(hub: HubServer, client: requests.Session, user: dict) -> None:
    token = csrf_token(client, hub.url + HQ_PAGE)
    assert client.post(hub.url + "/hq/logout", data={"csrf_token": token}, timeout=10).ok


def _hq_password_change(hub: HubServer, client: requests.Session, user: dict) -> None:
    db = open_hub_db(hub.data)
    try:
        assert hq_users.set_password(db, user["id"], "another-long-password")
    finally:
        db.close()


def _hq_role_change(hub: HubServer, client: requests.Session, user: dict) -> None:
    db = open_hub_db(hub.data)
    try:
        assert hq_users.set_role(db, user["id"], "marketing")
    finally:
        db.close()


def _hq_lockout(hub: HubServer, client: requests.Session, user: dict) -> None:
    for _ in range(hq_users.MAX_ATTEMPTS):
        _session, answer = login(hub.url, user["email"], "wrong-password-123")
        assert answer.status_code == 401


def _hq_disabled(hub: HubServer, client: requests.Session, user: dict) -> None:
    db = open_hub_db(hub.data)
    try:
        assert hq_users.set_disabled(db, user["id"], True)
        assert hq_users.set_disabled(db, user["id"], False)  # enabled again: still ended
    finally:
        db.close()


HQ_ACTIONS: dict[str, Callable[[HubServer, requests.Session, dict], None]] = {
    "logout": _hq_logout,
    "password_change": _hq_password_change,
    "role_change": _hq_role_change,
    "lockout": _hq_lockout,
    "disabled": _hq_disabled,
}


@pytest.mark.parametrize("action", HQ_ACTIONS)
def test_a_copied_head_office_cookie_stops_working(hub: HubServer, action: str) -> None:
    client, copy, user = _hq(hub)
    HQ_ACTIONS[action](hub, client, user)
    assert_sent_to_login(copy, hub.url + HQ_PAGE, "/hq/login")
    assert_sent_to_login(client, hub.url + HQ_PAGE, "/hq/login")


def test_head_office_password_change_takes_the_new_password(hub: HubServer) -> None:
    client, _copy, user = _hq(hub)
    _hq_password_change(hub, client, user)
    _s, old = login(hub.url, user["email"], user["password"])
    assert old.status_code == 401
    fresh = logged_in(hub.url, {**user, "password": "another-long-password"})
    assert_logged_in(fresh, hub.url + HQ_PAGE)


def test_head_office_bad_role_or_password_is_refused_and_ends_nothing(hub: HubServer) -> None:
    _client, copy, user = _hq(hub)
    db = open_hub_db(hub.data)
    try:
        with pytest.raises(hq_users.HqError):
            hq_users.set_role(db, user["id"], "owner")
        with pytest.raises(hq_users.HqError):
            hq_users.set_password(db, user["id"], "short")
        assert not hq_users.set_role(db, "hu-nobody", "admin")
    finally:
        db.close()
    assert_logged_in(copy, hub.url + HQ_PAGE)


# --- SameSite ----------------------------------------------------------------------------


def _samesite(answer: requests.Response) -> str | None:
    cookie = answer.headers.get("Set-Cookie", "")
    assert cookie.startswith("kiosk_hub_session="), answer.headers
    match = re.search(r"SameSite=(\w+)", cookie)
    return match.group(1) if match else None


@pytest.mark.parametrize("path", ["/hq/login", "/shop/"])
def test_hub_session_cookie_is_samesite_lax(hub: HubServer, path: str) -> None:
    answer = requests.get(hub.url + path, timeout=10)
    assert answer.status_code == 200
    assert _samesite(answer) == "Lax"
    assert "HttpOnly" in answer.headers["Set-Cookie"]


def test_head_office_login_cookie_is_samesite_lax(hub: HubServer) -> None:
    user = make_user(hub.data, "marketing")
    _session, answer = login(hub.url, user["email"], user["password"])
    assert answer.status_code == 302 and _samesite(answer) == "Lax"


# --- The commands that change a PIN, a password or a role --------------------------------


def test_kiosk_staff_set_pin_and_set_role_end_sessions(store: Server) -> None:
    from .conftest import run_kiosk

    _client, copy, member = _staff(store)
    done = run_kiosk(
        "staff", "set-pin", "--data", str(store.data), "--id", member["id"], "--pin", "864200"
    )
    assert done.returncode == 0, done.stderr
    assert_sent_to_login(copy, store.url + STAFF_PAGE, "/staff/login")

    _client, copy, member = _staff(store)
    done = run_kiosk(
        "staff", "set-role", "--data", str(store.data), "--id", member["id"], "--role", "manager"
    )
    assert done.returncode == 0, done.stderr
    assert_sent_to_login(copy, store.url + STAFF_PAGE, "/staff/login")
    bad = run_kiosk(
        "staff", "set-pin", "--data", str(store.data), "--id", "sf-nobody", "--pin", "123456"
    )
    assert bad.returncode != 0 and "unknown staff member" in bad.stderr


def test_kiosk_hub_hq_user_set_password_and_set_role_end_sessions(hub: HubServer) -> None:
    from .hub_fixtures import run_hub

    _client, copy, user = _hq(hub)
    done = run_hub(
        "hq-user",
        "set-password",
        "--data",
        str(hub.data),
        "--email",
        user["email"],
        "--password",
        "a-brand-new-password",
    )
    assert done.returncode == 0, done.stderr
    assert_sent_to_login(copy, hub.url + HQ_PAGE, "/hq/login")

    _client, copy, user = _hq(hub)
    done = run_hub(
        "hq-user",
        "set-role",
        "--data",
        str(hub.data),
        "--email",
        user["email"],
        "--role",
        "marketing",
    )
    assert done.returncode == 0, done.stderr
    assert_sent_to_login(copy, hub.url + HQ_PAGE, "/hq/login")
