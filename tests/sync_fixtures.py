"""Fixtures for the store-side sync tests: a store synced from the test hub, checks.

Import them with ``from .sync_fixtures import *  # noqa: F403`` (they build on
tests/hub_fixtures.py). The store template is an empty database that did its first
sync from a copy of the hub template, so its catalog and cursor match every
``hub_data`` copy of that template.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from app.core import db as dbmod
from app.store.migrations import migrate
from app.store.sync import client
from app.store.sync.pull import pull_once

from . import hub_fixtures
from .conftest import run_kiosk
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import LYON, _copy_hub, hub_database, hub_db, store_secrets

__all__ = [
    *hub_fixtures.__all__,
    "WSGITransport",
    "adjust_cli",
    "hub_levels",
    "hub_transactions",
    "inprocess_client",
    "store_env",
    "synced_store",
    "synced_store_template",
    "wait_for",
]


class WSGITransport(requests.adapters.BaseAdapter):
    """A requests transport that hands requests to a WSGI app in this process.

    ``before(request)`` / ``after(request, response)`` may raise
    ``requests.ConnectionError`` to fake a link that fails before the hub saw the
    request, or after it answered (the answer is lost, the hub's work is not).
    """

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.client = app.test_client()
        self.before: Callable[[requests.PreparedRequest], None] | None = None
        self.after: Callable[[requests.PreparedRequest, requests.Response], None] | None = None
        self.fail_with: int | None = None  # answer this status without asking the hub

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self.before:
            self.before(request)
        if self.fail_with is not None:
            response = requests.Response()
            response.status_code = self.fail_with
            response._content = b'{"error": "injected", "message": "injected fault"}'
            response.headers = CaseInsensitiveDict({"Retry-After": "0"})
            response.request, response.url = request, request.url
            return response
        parts = urlsplit(request.url)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        answer = self.client.open(
            parts.path + (f"?{parts.query}" if parts.query else ""),
            method=request.method,
            data=request.body or b"",
            headers=headers,
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response._content = answer.get_data()
        response.headers = CaseInsensitiveDict(dict(answer.headers))
        response.request = request
        response.url = request.url
        if self.after:
            self.after(request, response)
        return response

    def close(self) -> None:
        pass


def inprocess_client(
    hub_data: Path, store_id: str = LYON
) -> tuple[client.HubClient, WSGITransport]:
    """A HubClient for ``store_id`` talking to an in-process hub app on ``hub_data``."""
    from app.hub.app import create_hub_app

    app = create_hub_app(
        {"DATA_DIR": str(hub_data), "DATABASE": hub_database(hub_data), "TESTING": True}
    )
    transport = WSGITransport(app)
    session = requests.Session()
    session.mount("http://", transport)
    secret = store_secrets(hub_data)[store_id]
    return client.HubClient("http://hub.test", store_id, secret, session=session), transport


@pytest.fixture(scope="session")
def synced_store_template(hub_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty store that did its first sync as Lyon (do not modify: copy it)."""
    hub_copy = _copy_hub(hub_template, tmp_path_factory.mktemp("hub-for-store-template") / "hub")
    data = tmp_path_factory.mktemp("synced-store")
    db = dbmod.connect(dbmod.db_path(data))
    migrate(db)
    hub_client, _ = inprocess_client(hub_copy)
    pull_once(db, hub_client, own_store_id=LYON)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return data


@pytest.fixture
def synced_store(synced_store_template: Path, tmp_path: Path) -> Path:
    """This test's own copy of the synced store data directory."""
    return Path(shutil.copytree(synced_store_template, tmp_path / "store"))


def store_env(hub_url: str, hub_data: Path, store_id: str = LYON, timeout: float = 3) -> dict:
    """Environment that points ``kiosk serve`` / ``kiosk sync`` at a hub as ``store_id``."""
    return {
        "KIOSK_HUB_URL": hub_url,
        "KIOSK_STORE_ID": store_id,
        "KIOSK_STORE_SECRET": store_secrets(hub_data)[store_id],
        "KIOSK_HUB_TIMEOUT": str(timeout),
    }


_ADJUST_ID = re.compile(r"id ([0-9a-f-]{36})\)")


def adjust_cli(data: Path, sku: str, delta: int) -> str | None:
    """``kiosk stock adjust``; the movement id when the command returned 0, else None."""
    done = run_kiosk("stock", "adjust", "--data", str(data), sku, str(delta))
    if done.returncode != 0:
        return None
    return _ADJUST_ID.search(done.stdout).group(1)


def hub_transactions(hub_data: Path, ids: list[str]) -> dict[str, int]:
    """How many rows the hub holds for each id (exactly-once means 1 each)."""
    db = hub_db(hub_data)
    try:
        counts = dict.fromkeys(ids, 0)
        for (tx_id,) in db.execute("SELECT id FROM transactions").fetchall():
            if tx_id in counts:
                counts[tx_id] += 1
        return counts
    finally:
        db.close()


def hub_levels(hub_data: Path, store_id: str = LYON) -> dict[str, int]:
    """The hub's stock levels of one store."""
    db = hub_db(hub_data)
    try:
        return dict(
            db.execute(
                "SELECT sku, qty FROM stock_levels WHERE store_id = ?", [store_id]
            ).fetchall()
        )
    finally:
        db.close()


def wait_for(check: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (requests.RequestException, OSError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
