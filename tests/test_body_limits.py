"""Oversized requests are refused before the body is read, with a 413 naming the limit.

Against real servers (``kiosk serve``, ``kiosk hub serve``) over raw sockets, so the
test controls exactly what goes on the wire: a Content-Length announcing more than the
area's limit is answered while most of the body was never sent; a chunked body is
stopped once past the limit; just under the limit is not a 413. The answer is JSON for
the APIs and a page for people, and the server keeps serving afterwards.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from app.core.qrphoto import MAX_PHOTO_BYTES
from app.web import security

from .conftest import Server
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import HubServer, hub_database

KIB, MIB = security.KiB, security.MiB
STORE_SMALL = 256 * KIB
STORE_PHOTO = MAX_PHOTO_BYTES + 64 * KIB
HUB_API = 4 * MIB
HUB_HQ = 11 * MIB
HUB_SHOP = 256 * KIB
SENT_OF_HUGE = 4 * KIB  # what the client sends of a body it announced as huge


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _read_answer(sock: socket.socket, started: float) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before an answer: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Answer(int(lines[0].split()[1]), headers, body, time.monotonic() - started)


def post_raw(
    url: str,
    path: str,
    *,
    announced: int | None,
    body: bytes = b"",
    chunks: int = 0,
    chunk_size: int = 64 * KIB,
    content_type: str = "application/octet-stream",
) -> Answer:
    """POST ``body`` with ``Content-Length: announced`` (which may be far more than sent),
    or, with ``chunks``, that many chunks of ``chunk_size`` bytes (chunked encoding)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    try:
        head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Type: {content_type}"]
        if chunks:
            head.append("Transfer-Encoding: chunked")
        else:
            head.append(f"Content-Length: {announced}")
        started = time.monotonic()
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            if chunks:
                piece = f"{chunk_size:x}\r\n".encode() + b"x" * chunk_size + b"\r\n"
                for _ in range(chunks):
                    sock.sendall(piece)
                sock.sendall(b"0\r\n\r\n")
            else:
                sock.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking the rest: what we test
        return _read_answer(sock, started)
    finally:
        sock.close()


@pytest.fixture(scope="module")
def store(seeded_template: Path, tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("limits") / "store"
    shutil.copytree(seeded_template, data)
    server = Server(data).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hub(module_hub: HubServer) -> HubServer:  # noqa: F811
    return module_hub


@dataclass(frozen=True)
class Area:
    server: str  # "store" or "hub"
    path: str
    limit: int
    says: str  # how the answer names the limit
    json: bool


AREAS = [
    Area("store", "/staff/login", STORE_SMALL, "256 Kio", json=False),
    Area("store", "/panier/ajouter", STORE_SMALL, "256 Kio", json=False),
    Area("store", "/staff/orders/verify/photo", STORE_PHOTO, "8 Mio", json=False),
    Area("store", "/panier/photo", STORE_PHOTO, "8 Mio", json=False),
    Area("hub", "/api/v1/transactions", HUB_API, "4 MiB", json=True),
    Area("hub", "/api/v1/health", HUB_API, "4 MiB", json=True),
    Area("hub", "/hq/promotions/nouvelle", HUB_HQ, "10 Mo", json=False),
    Area("hub", "/api/v1/hq/promotions", HUB_HQ, "10 Mo", json=True),
    Area("hub", "/shop/panier/ajouter", HUB_SHOP, "256 Kio", json=False),
]
IDS = [f"{a.server}{a.path}" for a in AREAS]


@pytest.fixture
def servers(request: pytest.FixtureRequest) -> dict[str, Server]:
    return {"store": request.getfixturevalue("store"), "hub": request.getfixturevalue("hub")}


def _assert_refused(answer: Answer, area: Area) -> None:
    assert answer.status == 413, (answer.status, answer.text[:500])
    if area.json:
        assert answer.headers["content-type"].startswith("application/json")
        payload = json.loads(answer.body)
        assert payload["error"] in ("body_too_large", "too_large"), payload
        assert area.says in payload["message"], payload
    else:
        assert answer.headers["content-type"].startswith("text/html")
        assert "<html" in answer.text and area.says in answer.text, answer.text[-1500:]


def _assert_still_fine(server: Server) -> None:
    assert requests.get(server.url + server.health_path, timeout=10).ok


@pytest.mark.parametrize("area", AREAS, ids=IDS)
def test_just_over_the_limit_is_refused_from_the_headers(area: Area, servers) -> None:
    server = servers[area.server]
    answer = post_raw(server.url, area.path, announced=area.limit + 1, body=b"x" * SENT_OF_HUGE)
    # Answered while all but 4 KiB of the announced body was never sent.
    _assert_refused(answer, area)
    assert answer.headers.get("connection") == "close"
    _assert_still_fine(server)


@pytest.mark.parametrize("area", AREAS, ids=IDS)
def test_an_announced_50_mb_is_refused_without_waiting_for_it(area: Area, servers) -> None:
    server = servers[area.server]
    answer = post_raw(server.url, area.path, announced=50 * MIB, body=b"x" * SENT_OF_HUGE)
    _assert_refused(answer, area)
    _assert_still_fine(server)


@pytest.mark.parametrize("area", AREAS, ids=IDS)
def test_a_chunked_body_past_the_limit_is_refused(area: Area, servers) -> None:
    server = servers[area.server]
    chunk = 64 * KIB
    answer = post_raw(
        server.url, area.path, announced=None, chunks=area.limit // chunk + 2, chunk_size=chunk
    )
    _assert_refused(answer, area)
    _assert_still_fine(server)


@pytest.mark.parametrize("area", AREAS, ids=IDS)
def test_just_under_the_limit_is_read_and_handled(area: Area, servers) -> None:
    server = servers[area.server]
    answer = post_raw(server.url, area.path, announced=area.limit, body=b"x" * area.limit)
    # Not a valid form or a signed request, so refused, but for that and not its size.
    assert answer.status != 413 and answer.status < 500, (answer.status, answer.text[:300])
    _assert_still_fine(server)


def test_the_limits_are_the_documented_ones(store: Server, hub: HubServer) -> None:
    """The figures above are the servers' own settings, not guesses that happen to pass."""
    from app.hub.app import create_hub_app
    from app.store.app import create_app

    store_app = create_app({"DATA_DIR": str(store.data)})
    assert store_app.config["MAX_CONTENT_LENGTH"] == STORE_SMALL
    assert store_app.config["PHOTO_MAX_CONTENT_LENGTH"] == STORE_PHOTO
    hub_app = create_hub_app({"DATA_DIR": str(hub.data), "DATABASE": hub_database(hub.data)})
    assert hub_app.config["MAX_CONTENT_LENGTH"] == HUB_API
    assert hub_app.config["HQ_MAX_CONTENT_LENGTH"] == HUB_HQ
    assert hub_app.config["SHOP_MAX_CONTENT_LENGTH"] == HUB_SHOP


def _get_raw(url: str, target: str) -> Answer:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    try:
        started = time.monotonic()
        head = f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
        sock.sendall(head.encode())
        return _read_answer(sock, started)
    finally:
        sock.close()


def test_the_hub_reads_request_lines_up_to_64_kib(hub: HubServer) -> None:
    """As under waitress: a long link (a console page's ?next=) is served, not 414 at
    gevent's default 8 KB; past 64 KiB the request line is refused with 414."""

    def target(line_length: int) -> str:
        """A request target making a request line of ``line_length`` bytes."""
        start = "/hq/login?next=/hq/"
        return start + "a" * (line_length - len(f"GET {start} HTTP/1.1"))

    served = _get_raw(hub.url, target(60 * KIB))
    assert served.status == 200, (served.status, served.text[:300])
    refused = _get_raw(hub.url, target(64 * KIB + 1))
    assert refused.status == 414, (refused.status, refused.text[:300])
    _assert_still_fine(hub)


def test_the_store_reads_request_lines_up_to_64_kib(store: Server) -> None:
    """As the hub: a long link (a staff page's ?next=, a scanned cart's code) is served;
    past 64 KiB the store's own 414 page says so (not the web server's bare one)."""

    def target(line_length: int) -> str:
        start = "/staff/login?next=/staff/"
        return start + "a" * (line_length - len(f"GET {start} HTTP/1.1"))

    served = _get_raw(store.url, target(60 * KIB))
    assert served.status == 200, (served.status, served.text[:300])
    refused = _get_raw(store.url, target(64 * KIB + 1))
    assert refused.status == 414, (refused.status, refused.text[:300])
    assert "text/html" in refused.headers.get("content-type", ""), refused.headers
    assert "Cette adresse est trop longue" in refused.text, refused.text[:300]  # the kiosk's page
    _assert_still_fine(store)


def test_the_store_stops_reading_a_request_line_past_its_cap(store: Server) -> None:
    """A request line of 4 MiB is refused (414) without the server reading it all into
    memory: the web server's own cap (128 KiB) stops it, and the store stays fine."""
    host, port = store.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /staff/login?next=/staff/")
        try:
            for _ in range(64):  # 4 MiB, never a line end: a reader without a cap waits
                sock.sendall(b"a" * (64 * KIB))
        except OSError:
            pass  # refused and closed before taking it all: what we test
        answer = _read_answer(sock, started)
    assert answer.status == 414, (answer.status, answer.text[:300])
    _assert_still_fine(store)
