"""Staff are never lost (issue 9): ``/staff`` leads somewhere, the login lands on the
orders, and every staff page carries the same staff navigation and sends its scans to
the counter, never to the shopper kiosk's ``/scan``. Over real HTTP (``kiosk serve``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from app.core import db as dbmod
from app.store.domain import reservations as res
from app.store.domain.stock import self_store_id

from .conftest import _CSRF, add_staff_member
from .counter_client import Counter
from .order_helpers import add_order, install_hub_key, pick_variants

NAV_KEYS = ["orders", "desk", "returns", "reservations", "sync"]
NAV = re.compile(r'<nav class="counter-nav staff-nav"[^>]*>(.*?)</nav>', re.S)


@pytest.fixture
def shop(store_data, server_factory, fake_clock):
    """A store with a placed order, a ready one, a reservation, and a real server."""
    db = dbmod.connect(dbmod.db_path(store_data))
    install_hub_key(db)
    v = pick_variants(db, 4)
    made = {
        "placed": add_order(db, variants=v[:2]),
        "ready": add_order(db, variants=v[2:3], status="ready", customer="Zoé Lefèvre"),
        "reservation": res.create(db, [(v[3]["sku"], 1)], now=fake_clock.now),
        "sku": v[3]["sku"],
        "store_id": self_store_id(db),
    }
    db.close()
    return server_factory(store_data), made


def _nav(html: str) -> list[str]:
    """The entries of the staff navigation on a page (empty if it has none)."""
    found = NAV.findall(html)
    assert len(found) <= 1
    return re.findall(r'data-nav="([a-z]+)"', found[0]) if found else []


def _scan_url(html: str) -> str:
    return re.search(r'data-scan-url="([^"]*)"', html).group(1)


@pytest.mark.parametrize("path", ["/staff", "/staff/"])
def test_staff_address_leads_to_the_login_then_to_the_orders(shop, store_data, path):
    server, _ = shop
    add_staff_member(store_data)
    anon = requests.Session()
    r = anon.get(server.url + path, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/staff/login"
    page = anon.get(server.url + path, timeout=10)  # followed: the login form, not a 404
    assert page.status_code == 200 and page.url.endswith("/staff/login")
    assert 'name="pin"' in page.text
    staff = Counter(server.url, store_data)
    r = staff.get(path)
    assert r.status_code == 302 and r.headers["Location"] == "/staff/orders"
    assert staff.get("/staff/orders").status_code == 200


def test_login_lands_on_the_orders_or_a_safe_next(shop, store_data):
    server, made = shop
    member = add_staff_member(store_data, name="Léa Petit")

    def login(next_: str | None) -> requests.Response:
        s = requests.Session()
        token = _CSRF.search(s.get(server.url + "/staff/login", timeout=10).text).group(1)
        form = {"staff_id": member["id"], "pin": member["pin"], "csrf_token": token}
        if next_ is not None:
            form["next"] = next_
        return s.post(server.url + "/staff/login", data=form, allow_redirects=False, timeout=10)

    assert login(None).headers["Location"] == "/staff/orders"
    wanted = f"/staff/orders/{made['ready']['id']}"
    assert login(wanted).headers["Location"] == wanted
    for odd in ("https://evil.example/staff", "//evil.example/staff", "/scan?code=1"):
        r = login(odd)
        assert r.status_code == 302 and r.headers["Location"] == "/staff/orders", odd


def test_every_staff_page_has_the_staff_navigation_and_scans_at_the_counter(shop, store_data):
    server, made = shop
    staff = Counter(server.url, store_data)
    placed, ready, reservation = made["placed"], made["ready"], made["reservation"]
    pages = {
        "/staff/orders": "orders",
        f"/staff/orders?q={ready['number']}": "orders",
        f"/staff/orders/{placed['id']}": "orders",
        f"/staff/orders/{placed['id']}/prepare": "orders",
        "/staff/orders/handover": "desk",
        f"/staff/orders/{ready['id']}/handover": "desk",
        "/staff/returns": "returns",
        "/staff/reservations": "reservations",
        f"/staff/reservations/{reservation['id']}": "reservations",
        "/staff/status": "sync",
        f"/staff/products/{made['sku']}": None,
        "/staff/orders/o-does-not-exist": None,  # a 404 keeps the navigation too
        "/staff/scan?code=KQ1.forged.AAAA": "desk",  # a refused scan too
    }
    for path, current in pages.items():
        r = staff.get(path)
        assert r.status_code in (200, 400, 404), (path, r.status_code)
        assert _nav(r.text) == NAV_KEYS, path
        nav = NAV.search(r.text).group(1)
        on = re.findall(r'aria-current="page" data-nav="([a-z]+)"', nav)
        assert on == ([current] if current else []), path
        scan_url = _scan_url(r.text)
        assert scan_url.startswith("/staff/") and scan_url != "/scan", (path, scan_url)
    # The login page (no navigation: nobody is logged in) sends a scan to the counter too,
    # which asks for the login and then opens what was scanned.
    login = requests.get(server.url + "/staff/login", timeout=10).text
    assert _nav(login) == [] and _scan_url(login) == "/staff/scan"
    # The shopper kiosk keeps its own /scan.
    assert _scan_url(requests.get(server.url + "/", timeout=10).text) == "/scan"


def _login_then(url: str, data: Path, path: str) -> requests.Response:
    """Follow a logged-out staff address through the login form; the final response."""
    member = add_staff_member(data, name="Nina Morel")
    s = requests.Session()
    first = s.get(url + path, timeout=10)
    assert "/staff/login" in first.url
    form = {
        "staff_id": member["id"],
        "pin": member["pin"],
        "csrf_token": _CSRF.search(first.text).group(1),
    }
    nxt = re.search(r'class="login-form".*?name="next" value="([^"]+)"', first.text, re.S)
    assert nxt, "the login form keeps where to go next"
    form["next"] = nxt.group(1).replace("&amp;", "&")
    return s.post(url + "/staff/login", data=form, timeout=10)


def test_a_scan_on_the_login_page_opens_the_order_after_login(shop, store_data):
    server, made = shop
    r = _login_then(server.url, store_data, f"/staff/scan?code={made['placed']['number']}")
    assert r.status_code == 200 and r.url.endswith(f"/staff/orders/{made['placed']['id']}")


def test_the_new_counter_pages_need_a_login(shop):
    server, made = shop
    anon = requests.Session()
    for path in (f"/staff/products/{made['sku']}", "/staff/scan?code=x"):
        r = anon.get(server.url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 302 and r.headers["Location"].startswith("/staff/login"), path
        assert "next=" in r.headers["Location"], path


def test_error_pages_under_staff_scan_at_the_counter_too(shop):
    """Pages the staff layout does not draw (an unknown address, a wrong method) still
    send a scan to the counter, never to the shopper kiosk's /scan."""
    server, _made = shop
    unknown = requests.get(server.url + "/staff/nothing-here", timeout=10)
    assert unknown.status_code == 404 and _scan_url(unknown.text) == "/staff/scan"
    wrong = requests.delete(server.url + "/staff/login", timeout=10)
    assert wrong.status_code == 405 and _scan_url(wrong.text) == "/staff/scan"
    assert _scan_url(requests.get(server.url + "/nothing-here", timeout=10).text) == "/scan"
