"""The self-healing screen: the kiosk page reloads itself when its server comes back,
never while it is away, and beats for the screen's watchdog (GET /kiosk/heartbeat)."""

from __future__ import annotations

import time

import pytest
import requests

from .conftest import Server

pytestmark = pytest.mark.browser


def _wait(predicate, timeout: float, what: str, step: float = 0.1):
    """Poll ``predicate`` until it is truthy (its value returned) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _same_port(first: Server) -> Server:
    """A new server on the first one's data and port (a restart, an upgrade)."""
    second = Server(first.data, first.env)
    second.port = first.port
    second.url = first.url
    return second


# The page beats every BEAT_S here (KIOSK_HEARTBEAT_SECONDS; 5 s in production), and
# looks for a server that went away every second (2 s in production).
BEAT_S = 1
FAST_BEAT = {"KIOSK_HEARTBEAT_SECONDS": str(BEAT_S)}


@pytest.fixture
def beating_server(server_factory, store_data) -> Server:
    """A store server whose pages beat every BEAT_S."""
    return server_factory(store_data, FAST_BEAT)


def _heartbeat(server: Server, **params) -> requests.Response:
    return requests.get(server.url + "/kiosk/heartbeat", params=params, timeout=5)


def test_page_reloads_once_when_the_server_comes_back(page, beating_server):
    store_server = beating_server
    loads: list[str] = []
    page.on("load", lambda: loads.append(page.url))
    page.goto(store_server.url + "/")
    page.wait_for_function("() => window.kioskHeal && window.kioskHeal.beats >= 1")
    page.evaluate("() => { window.beforeOutage = true; }")
    assert len(loads) == 1

    store_server.stop()
    # The page notices the outage (failed beats) but stays where it is: no reload loop,
    # nothing shown but the page itself.
    page.wait_for_function("() => window.kioskHeal.failures >= 3", timeout=20_000)
    assert len(loads) == 1
    assert page.evaluate("() => window.beforeOutage") is True
    assert page.locator("body.attract-page").is_visible()

    second = _same_port(store_server)
    try:
        second.start()
        came_back = time.monotonic()
        # Reloaded by itself: the marker set before the outage is gone.
        page.wait_for_function(
            "() => window.kioskHeal && window.beforeOutage === undefined "
            "&& window.kioskHeal.beats >= 1",
            timeout=15_000,
        )
        assert time.monotonic() - came_back < 15
        # Once: the new page settles on the new server and does not reload again.
        page.wait_for_function("() => window.kioskHeal.beats >= 2", timeout=15_000)
        assert len(loads) == 2, loads
        assert page.evaluate("() => window.kioskHeal.stale()") is False
    finally:
        second.stop()


def test_a_restart_between_two_beats_is_seen_by_the_boot_id(page, store_server):
    """A server restarted faster than the page's beat: no failed beat, a new boot id."""
    page.goto(store_server.url + "/")
    page.wait_for_function("() => window.kioskHeal && window.kioskHeal.beats >= 1")
    page.evaluate("() => { window.beforeOutage = true; }")
    boot = _heartbeat(store_server).json()["boot"]
    # Right after a beat: the restart fits in the 5 s before the next one.
    beats = page.evaluate("() => window.kioskHeal.beats")
    page.wait_for_function(f"() => window.kioskHeal.beats > {beats}", timeout=10_000)
    store_server.stop()
    second = _same_port(store_server)
    try:
        second.start()
        assert _heartbeat(second).json()["boot"] != boot
        page.wait_for_function(
            "() => window.kioskHeal && window.beforeOutage === undefined", timeout=15_000
        )
    finally:
        second.stop()


def test_a_shopper_mid_action_is_not_interrupted(page, server_factory, store_data):
    """On a shopper's page the page waits for its own idle reset, which loads a fresh
    page from the new server once the shopper has gone."""
    env = {"KIOSK_IDLE_SECONDS": "6", "KIOSK_IDLE_COUNTDOWN_SECONDS": "2", **FAST_BEAT}
    server = server_factory(store_data, env)
    loads: list[str] = []
    page.on("load", lambda: loads.append(page.url))
    page.goto(server.url + "/browse")
    page.wait_for_function("() => window.kioskHeal && window.kioskHeal.beats >= 1")
    page.evaluate("() => { window.beforeOutage = true; }")
    server.stop()
    # A shopper at work all along (the idle reset is 6 s here): touching while the page
    # finds the server gone, as after.
    deadline = time.monotonic() + 15
    while not page.evaluate("() => window.kioskHeal.failures >= 1"):
        assert time.monotonic() < deadline, "the page never saw the server go"
        page.mouse.click(5, 500)
        page.wait_for_timeout(500)
    second = _same_port(server)
    try:
        second.start()
        # The shopper keeps touching the screen: the page knows it is stale, waits.
        deadline = time.monotonic() + 15
        while not page.evaluate("() => window.kioskHeal.stale()"):
            assert time.monotonic() < deadline, "the page never saw the server come back"
            page.mouse.click(5, 500)
            page.wait_for_timeout(500)
        for _ in range(4):  # 2 s more of a shopper at work
            page.mouse.click(5, 500)
            page.wait_for_timeout(500)
        assert page.evaluate("() => window.beforeOutage") is True
        assert len(loads) == 1
        # The shopper leaves: the idle question comes on the old page, not a reload...
        page.locator("#idle").wait_for(state="visible", timeout=15_000)
        assert page.evaluate("() => window.beforeOutage") is True
        # ... and its reset brings the attract screen from the new server.
        page.wait_for_function(
            "() => window.kioskHeal && window.beforeOutage === undefined "
            "&& document.body.classList.contains('attract-page')",
            timeout=15_000,
        )
        page.wait_for_function("() => window.kioskHeal.beats >= 1", timeout=10_000)
        assert page.evaluate("() => window.kioskHeal.stale()") is False
    finally:
        second.stop()


def test_heartbeat_age_small_while_the_page_runs_and_grows_when_it_is_gone(browser, beating_server):
    store_server = beating_server
    small = BEAT_S + 2  # a beat's period and some slack
    # No beat yet from this box's screen: no age, and a 503 for a watchdog's curl -f.
    r = _heartbeat(store_server)
    assert r.status_code == 200 and r.json()["age"] is None
    assert r.headers["Cache-Control"] == "no-store"
    assert _heartbeat(store_server, max_age=45).status_code == 503

    context = browser.new_context()
    pg = context.new_page()
    pg.goto(store_server.url + "/")
    _wait(lambda: _heartbeat(store_server).json()["age"] is not None, 10, "a first beat")
    # While the page runs the age stays small (a beat every BEAT_S) over three beat
    # periods.
    deadline = time.monotonic() + 3 * BEAT_S
    while time.monotonic() < deadline:
        age = _heartbeat(store_server).json()["age"]
        assert age is not None and age < small, age
        time.sleep(0.2)
    assert _heartbeat(store_server, max_age=45).status_code == 200

    context.close()  # the renderer is gone: no more beats
    _wait(lambda: _heartbeat(store_server).json()["age"] > small, 15, "the age to grow")
    assert _heartbeat(store_server, max_age=small).status_code == 503


def test_heartbeat_bad_input_is_never_a_500(store_server):
    url = store_server.url + "/kiosk/heartbeat"
    for bad in ("abc", "nan", "inf", "-1", "0", "1e999", ""):
        assert requests.get(url, params={"max_age": bad}, timeout=5).status_code == 400, bad
    # A beat needs no CSRF token (a harmless beacon) and ignores whatever it is sent.
    for data in (b"", b"\x00\xff" * 100, b"csrf_token=nope&x=1"):
        r = requests.post(url, data=data, timeout=5)
        assert r.status_code == 200 and r.json()["ok"] is True
    r = requests.post(url, json={"boot": 1}, timeout=5)
    assert r.status_code == 200
    assert requests.get(url, params={"max_age": "30"}, timeout=5).status_code == 200


def test_each_screen_beats_for_itself(client):
    """A tablet on the store's LAN beating does not keep this box's own screen alive:
    the age is the asking address's own (every loopback address is the local screen)."""
    tablet = {"REMOTE_ADDR": "192.0.2.20"}
    other = {"REMOTE_ADDR": "192.0.2.21"}
    assert client.post("/kiosk/heartbeat", environ_base=tablet).status_code == 200
    assert client.get("/kiosk/heartbeat", environ_base=tablet).json["age"] < 5
    assert client.get("/kiosk/heartbeat", environ_base=other).json["age"] is None
    r = client.get("/kiosk/heartbeat?max_age=45", environ_base=other)
    assert r.status_code == 503 and r.json["ok"] is False
    # 127.0.0.1 and ::1 are the same screen: the browser may use either.
    assert client.post("/kiosk/heartbeat", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    local = client.get("/kiosk/heartbeat?max_age=45", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert local.status_code == 200 and local.json["age"] < 5
