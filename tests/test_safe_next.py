"""One ``safe_next`` rule: a hostile ``next`` is ignored (the default page), never a 500.

Sent to the real servers: the store's staff login and kiosk forms, the head-office
login, the web shop's forms. Whatever ``next`` says, the redirect stays on this site.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from app.web.security import safe_next

from .conftest import Server, add_staff_member
from .hq_helpers import csrf_token, make_user
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import HubServer

HOSTILE = [
    "https://evil.example/",
    "http://evil.example/staff/orders",
    "//evil.example/staff",
    "///evil.example/hq/",
    "/\\evil.example",
    "\\\\evil.example\\hq",
    "/staff/\\..\\evil",
    "https:evil.example",
    "http:/evil.example/hq/",
    "javascript:alert(1)",
    " JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/staff/orders\r\nSet-Cookie: planted=1",
    "/hq/\r\nLocation: https://evil.example",
    "/shop/\nX-Evil: 1",
    "/staff/\x00",
    "/hq/\t//evil.example",
    "http://[evil",
    "//[",
    "/staff/" + "a" * 10_000,
    "/hq/" + "é" * 50,
    "%2F%2Fevil.example",
    "#/evil",
    "?next=//evil.example",
    "",
]
IDS = [f"{i:02d}" for i in range(len(HOSTILE))]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def assert_on_site(answer: requests.Response, base: str, default_path: str) -> None:
    """A redirect to the default page of this site, never elsewhere, never a 500."""
    assert answer.status_code == 302, (answer.status_code, answer.text[:300])
    location = answer.headers["Location"]
    parts = urlsplit(location)
    assert parts.netloc in ("", urlsplit(base).netloc), location
    assert parts.scheme in ("", "http"), location
    assert parts.path == default_path, location
    assert not any(c in location for c in "\r\n\t\\\x00"), location
    assert set(answer.headers) & {"X-Evil"} == set() and "planted" not in answer.headers.get(
        "Set-Cookie", ""
    )


@pytest.mark.parametrize("hostile", HOSTILE, ids=IDS)
def test_the_rule_itself(hostile: str) -> None:
    assert safe_next(hostile, "/default", prefix="/") == "/default"
    assert safe_next(hostile, "/default", prefix="/staff", host="127.0.0.1:5") == "/default"


def test_the_rule_keeps_our_own_pages() -> None:
    """The control: a plain page of ours goes through, so the rule is not "always default"."""
    assert safe_next("/staff/status?x=1", "/d", prefix="/staff") == "/staff/status?x=1"
    assert safe_next("/hq/flotte", "/d", prefix="/hq") == "/hq/flotte"
    assert safe_next("/hqevil", "/d", prefix="/hq") == "/d"
    assert safe_next("http://shop.test/p?a=1", "/d", host="shop.test") == "/p?a=1"
    assert safe_next("http://other.test/p", "/d", host="shop.test") == "/d"


# --- The store -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(seeded_template: Path, tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("next") / "store"
    shutil.copytree(seeded_template, data)
    server = Server(data).start()
    server.member = add_staff_member(data, "Camille")  # type: ignore[attr-defined]
    yield server
    server.stop()


def _staff_login(store: Server, next_value: str) -> requests.Response:
    session = requests.Session()
    page = session.get(store.url + "/staff/login", params={"next": next_value}, timeout=10)
    assert page.status_code == 200, page.status_code
    member = store.member  # type: ignore[attr-defined]
    return session.post(
        store.url + "/staff/login",
        data={
            "staff_id": member["id"],
            "pin": member["pin"],
            "csrf_token": _CSRF.search(page.text).group(1),
            "next": next_value,
        },
        allow_redirects=False,
        timeout=10,
    )


@pytest.mark.parametrize("hostile", HOSTILE, ids=IDS)
def test_staff_login_ignores_a_hostile_next(store: Server, hostile: str) -> None:
    answer = _staff_login(store, hostile)
    assert_on_site(answer, store.url, "/staff/orders")


def test_staff_login_follows_a_staff_page(store: Server) -> None:
    answer = _staff_login(store, "/staff/status")
    assert answer.status_code == 302 and answer.headers["Location"] == "/staff/status"


@pytest.mark.parametrize("hostile", HOSTILE, ids=IDS)
def test_kiosk_language_switch_ignores_a_hostile_next(store: Server, hostile: str) -> None:
    session = requests.Session()
    page = session.get(store.url + "/browse", timeout=10)
    answer = session.post(
        store.url + "/lang",
        data={"lang": "en", "next": hostile, "csrf_token": _CSRF.search(page.text).group(1)},
        headers={"Referer": "https://evil.example/browse"},
        allow_redirects=False,
        timeout=10,
    )
    assert_on_site(answer, store.url, "/")


# --- The hub ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub(module_hub: HubServer) -> HubServer:  # noqa: F811
    module_hub.user = make_user(module_hub.data, "operations")  # type: ignore[attr-defined]
    return module_hub


def _hq_login(hub: HubServer, next_value: str) -> requests.Response:
    session = requests.Session()
    page = session.get(hub.url + "/hq/login", params={"next": next_value}, timeout=10)
    assert page.status_code == 200, page.status_code
    user = hub.user  # type: ignore[attr-defined]
    return session.post(
        hub.url + "/hq/login",
        data={
            "email": user["email"],
            "password": user["password"],
            "csrf_token": _CSRF.search(page.text).group(1),
            "next": next_value,
        },
        allow_redirects=False,
        timeout=10,
    )


@pytest.mark.parametrize("hostile", HOSTILE, ids=IDS)
def test_head_office_login_ignores_a_hostile_next(hub: HubServer, hostile: str) -> None:
    assert_on_site(_hq_login(hub, hostile), hub.url, "/hq/")


def test_head_office_login_follows_a_console_page(hub: HubServer) -> None:
    answer = _hq_login(hub, "/hq/journal")
    assert answer.status_code == 302 and answer.headers["Location"] == "/hq/journal"


@pytest.mark.parametrize("hostile", HOSTILE, ids=IDS)
def test_web_shop_forms_ignore_a_hostile_next(hub: HubServer, hostile: str) -> None:
    session = requests.Session()
    token = csrf_token(session, hub.url + "/shop/")
    answer = session.post(
        hub.url + "/shop/langue",
        data={"lang": "en", "next": hostile, "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert_on_site(answer, hub.url, "/shop/")
