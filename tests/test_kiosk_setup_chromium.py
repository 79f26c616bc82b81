"""The Chromium managed policies kiosk-setup renders, applied by Debian's Chromium.

``install.sh --root`` renders them for a real store server's port; Chromium runs
headless in a private mount namespace with the rendered ``etc/chromium`` mounted over
``/etc/chromium`` (where Chromium on Linux reads ``policies/managed/*.json``); the
host's /etc/chromium is never changed. Playwright drives it over its remote-debugging
port: the kiosk page loads, anything else (another local server, ``chrome://``,
``view-source:``) is blocked by the administrator.

The one policy relaxed for the test is ``DeveloperToolsAvailability``: at 2 (what a box
gets, checked below) Chromium refuses every DevTools client, so nothing could read its
pages; the test turns it to 1 and checks everything else as rendered.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
import requests

from .conftest import free_port
from .kiosk_setup_chromium import (
    CHROMIUM,
    POLICY,
    counting_server,
    in_mount_namespace,
    render_kiosk,
    stop,
)

ATTRACT_TEXT = re.compile(r"Touchez l.écran|Touch the screen", re.I)


@pytest.fixture
def policy_root(tmp_path, store_server):
    root = render_kiosk(tmp_path / "root", int(store_server.url.rsplit(":", 1)[1]))
    path = root / POLICY
    policy = json.loads(path.read_text())
    assert policy["DeveloperToolsAvailability"] == 2  # a box: no DevTools at all
    policy["DeveloperToolsAvailability"] = 1  # the test needs a DevTools client
    path.write_text(json.dumps(policy))
    return root


@pytest.fixture
def chromium(policy_root, tmp_path):
    """Headless Chromium under the rendered policies, with a remote-debugging port."""
    port = free_port()
    cmd = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--remote-debugging-port={port}",
        "--remote-debugging-address=127.0.0.1",
        "about:blank",
    ]
    log = (tmp_path / "chromium.log").open("wb")
    proc = subprocess.Popen(
        in_mount_namespace(policy_root / "etc/chromium", cmd),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (tmp_path / "chromium.log").read_text()[-2000:]
            try:
                if requests.get(endpoint + "/json/version", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "Chromium's DevTools port never answered"
            time.sleep(0.1)
        yield endpoint
    finally:
        stop(proc)
        log.close()


def _goto(context, url: str) -> tuple[str | None, str]:
    """(error, text of the page shown) after navigating a fresh tab to ``url``."""
    page = context.new_page()
    error = None
    try:
        page.goto(url, timeout=10_000)
    except Exception as exc:  # a blocked navigation is an error for Playwright
        error = str(exc)
    try:
        text = page.content()
    except Exception as exc:  # the tab of a blocked chrome:// page may be gone
        text = f"<unreadable: {exc}>"
    return error, text


def test_kiosk_page_loads_and_everything_else_is_blocked(chromium, store_server, playwright):
    with counting_server() as other:
        browser = playwright.chromium.connect_over_cdp(chromium, timeout=15_000)
        context = browser.contexts[0]

        error, html = _goto(context, store_server.url + "/")
        assert error is None, error
        assert ATTRACT_TEXT.search(html), html[:2000]

        error, html = _goto(context, other.url)
        assert error and "ERR_BLOCKED_BY_ADMINISTRATOR" in error, (error, html[:500])
        assert "NOT THE KIOSK" not in html
        assert other.hits == [], "Chromium reached the blocked server"

        for url in ("chrome://settings/", f"view-source:{store_server.url}/"):
            error, html = _goto(context, url)
            assert error is not None, f"{url} loaded: {html[:500]}"
            assert "ERR_BLOCKED_BY_ADMINISTRATOR" in error or "closed" in error, (url, error)
            assert "Settings" not in html and "line-number" not in html, (url, html[:500])
        browser.close()
