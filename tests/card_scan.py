"""Scanning « Ma carte » in tests as the kiosk does: by POST, never in a URL.

A card token in a GET address is refused (app/store/views/kiosk.py ``scan``,
app/store/views/scan.py): tests send it as the kiosk's scripts do (static/js/kiosk.js).
"""

from __future__ import annotations

import re

import requests

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def post_card(
    http: requests.Session, base_url: str, token: str, path: str = "/scan", page: str = "/browse"
) -> requests.Response:
    """POST a card token to ``path`` with the CSRF token of ``page`` (the kiosk's form)."""
    html = http.get(base_url + page, timeout=10).text
    csrf = _CSRF.search(html).group(1)
    return http.post(base_url + path, data={"csrf_token": csrf, "code": token}, timeout=10)


def scan_card(page, token: str) -> None:
    """The handheld scanner's burst on the page shown (a keyboard burst then Enter): the
    kiosk's script posts the card, and the page that answers is loaded."""
    with page.expect_navigation():
        page.keyboard.type(token)
        page.keyboard.press("Enter")
    page.wait_for_load_state("load")
