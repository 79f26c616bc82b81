"""A tablet at the click-and-collect counter, over real HTTP (tests' helper)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import requests

from .conftest import staff_login
from .order_helpers import PICKUP_CODE

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_HANDOVER_ID = re.compile(r'name="handover_id" value="([^"]+)"')


def _text(r: requests.Response) -> str:
    return re.sub(r"\s+", " ", html.unescape(r.text))


class Counter:
    """One tablet: a logged-in browser session at the counter."""

    def __init__(self, url: str, data: Path, role: str = "staff") -> None:
        self.url, self.data = url, data
        self.http = requests.Session()
        self.member = staff_login(self.http, data, url, role=role)

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.url + path, allow_redirects=False, timeout=10, **kw)

    def token(self, path: str = "/staff/orders/handover") -> str:
        return _CSRF.search(self.get(path).text).group(1)

    def post(self, path: str, data: dict | None = None, csrf: bool = True, **kw):
        data = dict(data or {})
        if csrf:
            data["csrf_token"] = self.token()
        return self.http.post(self.url + path, data=data, allow_redirects=False, timeout=15, **kw)

    def verify_code(self, number: str, code: str = PICKUP_CODE) -> requests.Response:
        return self.post("/staff/orders/verify/code", {"number": number, "code": code})

    def handover_id(self, order_id: str) -> str:
        return _HANDOVER_ID.search(self.get(f"/staff/orders/{order_id}/handover").text).group(1)
