"""Many held long-polls against a real ``kiosk hub serve`` (gevent, issue 11).

200 signed ``GET /api/v1/changes?wait=20`` are held at once (more than waitress's 32
threads ever allowed); a signed POST is answered meanwhile, and the change it makes
reaches every held poll within ~2 s. Then a hub started with ``--max-waiters`` answers
503 with Retry-After past its bound instead of holding more.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

from app.core import signing

from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import LYON, PARIS, HubClient, hub_db, movement, store_secrets
from .sync_fixtures import wait_for

HELD = 200
T = TypeVar("T")


async def _signed_get(url: str, store_id: str, secret: str, path_qs: str) -> tuple:
    """One signed GET over a raw socket (Connection: close): (status, headers, body, at)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    hdrs = signing.sign_request(store_id, secret, "GET", path_qs, b"")
    head = f"GET {path_qs} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    writer.write(head.encode("latin-1"))
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(-1), 40)
    at = time.monotonic()
    writer.close()
    top, _, body = raw.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return status, headers, body, at


def _run(scenario: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
    """Run ``scenario()`` on an event loop of its own thread: this one may already have a
    running loop (Playwright's sync API, once a browser test of the session started it)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(asyncio.wait_for(scenario(), timeout))).result()


def _nonce_count(data, store_id: str) -> int:
    db = hub_db(data)
    try:
        return db.execute("SELECT count(*) FROM nonces WHERE store_id = ?", [store_id]).fetchone()[
            0
        ]
    finally:
        db.close()


def _last_and_sku(data) -> tuple[int, str]:
    db = hub_db(data)
    try:
        last = db.execute("SELECT max(seq) FROM changes").fetchone()[0]
        sku = db.execute("SELECT sku FROM variants LIMIT 1").fetchone()[0]
    finally:
        db.close()
    return last, sku


def test_200_held_long_polls_all_get_a_change_and_a_post_is_answered(hub_server) -> None:
    secrets = store_secrets(hub_server.data)
    paris = HubClient(hub_server.url, PARIS, secrets[PARIS])
    last, sku = _last_and_sku(hub_server.data)
    before = _nonce_count(hub_server.data, LYON)
    path = f"/api/v1/changes?since={last}&wait=20&limit=100"

    async def scenario() -> tuple[list, float, float, dict]:
        polls = [
            asyncio.create_task(_signed_get(hub_server.url, LYON, secrets[LYON], path))
            for _ in range(HELD)
        ]
        await asyncio.to_thread(
            wait_for,
            lambda: _nonce_count(hub_server.data, LYON) - before >= HELD,
            15,
            f"{HELD} long polls to reach the hub",
        )
        await asyncio.sleep(0.3)  # past the signature check: now waiting
        assert not any(p.done() for p in polls), "a poll came back before any change"
        started = time.monotonic()
        resp = await asyncio.to_thread(paris.post_transactions, [movement(sku, -1)])
        answered = time.monotonic()
        assert resp.status_code == 200, resp.text
        return await asyncio.gather(*polls), started, answered, resp.json()

    answers, started, answered, posted = _run(scenario, 60)
    assert answered - started < 2, f"the post took {answered - started:.2f} s"
    seq = posted["results"][0]["result"]["seq"]
    slowest = 0.0
    for status, _headers, body, at in answers:
        assert status == 200, body[:300]
        page = json.loads(body)
        assert seq in [c["seq"] for c in page["changes"]], page
        slowest = max(slowest, at - answered)
    assert slowest < 2.5, f"the change reached the last of {HELD} polls {slowest:.2f} s later"


def test_past_max_waiters_the_hub_answers_503_with_retry_after(hub_factory, hub_data) -> None:
    hub = hub_factory(hub_data, {"KIOSK_HUB_MAX_WAITERS": "3"})
    secrets = store_secrets(hub.data)
    last, _sku = _last_and_sku(hub.data)
    path = f"/api/v1/changes?since={last}&wait=3"

    async def scenario() -> list:
        return await asyncio.gather(
            *(_signed_get(hub.url, LYON, secrets[LYON], path) for _ in range(8))
        )

    answers = _run(scenario, 30)
    statuses = sorted(a[0] for a in answers)
    assert statuses.count(200) == 3 and statuses.count(503) == 5, statuses
    for status, headers, body, _at in answers:
        if status == 503:
            assert int(headers["retry-after"]) >= 1
            assert json.loads(body)["error"] == "overloaded"
